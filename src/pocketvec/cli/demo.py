"""`pocketvec demo`: train, export, verify, enroll, calibrate and match on the embedded demo items."""

from __future__ import annotations

from pathlib import Path

import typer

from pocketvec.cli import ranged


def demo(
    out: Path = typer.Option(Path("pocketvec-demo"), "--out", help="Folder for every file the demo makes."),
    epochs: int | None = ranged.option(None, "--epochs", key="epochs",
                                       help="Training epochs (default: the enroll preset's)."),
    quick: bool = typer.Option(False, "--quick",
                               help="A shorter training run (2 epochs instead of the enroll preset's 12)."),
    train_set: list[str] = typer.Option([], "--train-set", help="Override a training setting: KEY=JSON_VALUE "
                                        "(dotted keys, e.g. encoder.preprocess.input_size=160). Repeatable."),
    calibration_photos: int = typer.Option(4, "--calibration-photos", min=1,
                                           help="Phone photos per item to calibrate on."),
    test_photos: int = typer.Option(8, "--test-photos", min=1, help="Other phone photos per item to match."),
    target_precision: float = typer.Option(0.99, "--target-precision", help="Answer precision the rule must reach."),
    coreml: bool = typer.Option(True, "--coreml/--no-coreml", help="Also export and verify Core ML int8."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty --out folder."),
    seed: int = ranged.option(0, "--seed", key="seed", help="Seed for training and the synthetic photos."),
    show: int = typer.Option(12, "--show", min=0, help="Match rows to print (the summary counts all)."),
) -> None:
    """Run the whole loop on the embedded items and print where the files are.

    Example: pocketvec demo --quick --out /tmp/pocketvec-demo
    """
    import json

    from pocketvec.checks import check_number
    from pocketvec.demo import DemoOptions, run_demo
    from pocketvec.errors import ConfigError
    from pocketvec.output_paths import check_output_folder

    from .output import safe
    from .runtime_tables import console, match_table, print_calibration

    check_output_folder(out, "--out")
    check_number("--target-precision", target_precision, 0.0, 1.0)
    overrides = {}
    for item in train_set:
        key, sep, value = item.partition("=")
        if not sep:
            raise ConfigError(f"--train-set takes KEY=VALUE. Got {item!r}.")
        try:
            overrides[key] = json.loads(value)
        except ValueError:
            overrides[key] = value  # a plain string
    options = DemoOptions(out, epochs, quick, overrides, calibration_photos, test_photos, target_precision, coreml,
                          seed, overwrite)
    report = run_demo(options, say=lambda text: console.print(f"[bold]{safe(text)}[/]", highlight=False))
    console.print(report.parity.table())
    print_calibration(report.calibration)
    rows = list(range(min(show, len(report.matches))))
    console.print(match_table([report.names[i] for i in rows], [report.matches[i] for i in rows],
                              [report.truth[i] for i in rows]))
    c = report.counts()
    console.print(f"{c['photos']} photos ({c['item_photos']} of items, the rest show no item): {c['correct']} answered "
                  f"right, {c['accepted']} accepted, {c['wrong_accepts']} wrong answers accepted", highlight=False)
    console.print(f"top-1 label right: int8 ONNX + int8 gallery {report.top1_correct(report.matches)}/"
                  f"{c['item_photos']}, PyTorch fp32 {report.top1_correct(report.torch_matches)}/{c['item_photos']}; "
                  f"the same top-1 and decision as the PyTorch model on {report.torch_agreement:.1%} of photos "
                  "(each answer zoomed to the item, as the runtime gives it)",
                  highlight=False)
    for name, path in (("run folder", report.run_dir), ("ONNX int8", report.onnx_model),
                       ("Core ML int8", report.coreml_model), ("gallery", report.gallery), ("photos", report.photos)):
        if path:
            console.print(f"{name}: {safe(path)}", highlight=False)
    console.print(f"try: pocketvec match {safe(report.onnx_model)} {safe(report.gallery)} "
                  f"{safe(report.photos)}/test/*/photo_0.png",
                  highlight=False)
    if not report.parity.passed:
        raise typer.Exit(1)
