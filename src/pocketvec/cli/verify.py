"""`pocketvec verify`: parity of exported files against the PyTorch model; exit 1 when a bar fails."""

from __future__ import annotations

from pathlib import Path

import typer

from pocketvec.cli.output import console


def verify(
    run_dir: Path = typer.Argument(..., help="Run folder the files were exported from."),
    models: list[Path] = typer.Argument(..., help="Exported .onnx / .mlpackage files."),
    images: Path = typer.Option(..., "--images", help="Folder of real images, embedded and answered as photos."),
    gallery: Path | None = typer.Option(None, "--gallery", help="Gallery folder, each image its own label, "
                                        "embedded as items (default: the images, leave-one-out)."),
    json_out: Path | None = typer.Option(None, "--json", help="Also write the report as JSON to this file; "
                                         "'-' prints the JSON instead of the table."),
    text: bool = typer.Option(False, "--text", help="Also compare the decisions with text verification (the "
                              "pocketvec\\[text] extra reads every image's printed text once)."),
) -> None:
    """Check exported files against PyTorch fp32: the shipped weights and, for a run trained on the int8 grid,
    also its trained float weights (one row each; the exit status follows the shipped weights).

    The cosines and max |Δ| compare the first pass (each image embedded whole as a photo); top-1, decision and
    decision+text the answers as the runtime gives them, each photo zoomed to its item where the file re-ranks
    (zoomed: the photos answered from a region; regions: those agreeing with PyTorch's). docs/EXPORT.md.

    Example: pocketvec verify runs/demo model.onnx --images items/
    With text verification: pocketvec verify runs/demo model.onnx --images photos/ --gallery labels/ --text"""
    from pocketvec.export.verify import verify_models

    report = verify_models(run_dir, models, images, gallery, text)
    if str(json_out) == "-":
        print(report.to_json())
    else:
        console.print(report.table())
    if json_out and str(json_out) != "-":
        tmp = json_out.with_name(json_out.name + ".tmp")
        tmp.write_text(report.to_json())
        tmp.replace(json_out)
    if not report.passed:
        raise typer.Exit(1)
