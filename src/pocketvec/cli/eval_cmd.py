"""`pocketvec eval` (retrieval metrics) and `pocketvec calibrate` (the accept rule)."""

from __future__ import annotations

from pathlib import Path

import typer


def eval_command(
    model: Path = typer.Argument(..., help="Exported model (.onnx, .mlpackage)."),
    gallery_dir: Path = typer.Option(..., "--gallery", help="Folder (or CSV) of gallery images, labelled."),
    queries: Path = typer.Option(..., "--queries", help="Folder (one sub-folder per label) or CSV of query photos."),
    engine: str = typer.Option("auto", "--engine", help="auto | onnxruntime | coreml | interpreter."),
    threads: int | None = typer.Option(None, "--threads", help="Inference threads."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per inference batch."),
) -> None:
    """Recall@1/5, the pair threshold sweep and TPR at low FPR.

    Example: pocketvec eval model.onnx --gallery items/ --queries photos/
    """
    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.evaluation import evaluate

    from .runtime_tables import console, report_problems, sweep_table

    report = evaluate(open_engine(model, engine, threads), gallery_dir, queries, batch_size)
    report_problems(report.gallery.failures + report.queries.failures)
    console.print(sweep_table(report.sweep, report.best, "pair-level threshold sweep (query x label pairs)"))
    console.print(f"queries {len(report.queries.labels)}, gallery rows {len(report.gallery.labels)}")
    console.print(f"Recall@1 {report.recall_at_1:.4f}  Recall@5 {report.recall_at_5:.4f}  "
                  f"best-F1 threshold {report.best.threshold:.2f} (F1 {report.best.f1:.4f})", highlight=False)
    console.print("  ".join(f"TPR@FPR={fpr:g} {tpr:.4f}" for fpr, tpr in report.tpr_at_fpr.items()), highlight=False)


def calibrate(
    model: Path = typer.Argument(..., help="Exported model (.onnx, .mlpackage)."),
    gallery_path: Path = typer.Argument(..., metavar="GALLERY", help="Gallery file (.pvg) made by this model."),
    queries: Path = typer.Option(..., "--queries", help="Labelled photos of the items (folder per label or CSV); "
                                 "labels not in the gallery are distractors that must be rejected."),
    target_precision: float = typer.Option(0.99, "--target-precision", help="Answer precision the rule must reach."),
    best_f1: bool = typer.Option(False, "--best-f1", help="Choose the decision-level best-F1 rule instead."),
    write_model: Path | None = typer.Option(None, "--write-model",
                                            help="Also write the rule into this ONNX model's metadata."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report only; change no file."),
    engine: str = typer.Option("auto", "--engine", help="auto | onnxruntime | coreml | interpreter."),
    threads: int | None = typer.Option(None, "--threads", help="Inference threads."),
) -> None:
    """Choose the accept rule (threshold + margin) on labelled photos and store it in the gallery.

    Example: pocketvec calibrate model.onnx items.pvg --queries photos/ --target-precision 0.99
    """
    from pocketvec.output_paths import check_output_file
    from pocketvec.runtime.calibration import calibrate as run_calibration
    from pocketvec.runtime.checks import check_number
    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.enroll import embed_labelled, open_gallery
    from pocketvec.runtime.gallery_update import update_gallery
    from pocketvec.runtime.model_files import write_accept_rule

    from .runtime_tables import console, print_calibration, report_problems

    check_number("--target-precision", target_precision, 0.0, 1.0)
    if write_model is not None:
        check_output_file(write_model, "--write-model")
    runner = open_engine(model, engine, threads)
    gallery = open_gallery(runner, gallery_path)
    found = embed_labelled(runner, queries)
    report_problems(found.failures)
    result = run_calibration(found.embeddings @ gallery.embeddings().T, found.labels, gallery.labels,
                             target_precision, "f1" if best_f1 else "recall_at_precision")
    print_calibration(result)
    if dry_run:
        return
    if write_model:  # first: it refuses another model before anything is changed
        write_accept_rule(write_model, result.rule, runner.metadata.embedding_space_id)
        console.print(f"[green]wrote the rule into[/] {write_model}")
    def store_rule(stored) -> tuple[None, bool]:  # the file as it is now, under its write lock
        stored.accept_rule = result.rule
        return None, True

    meta = runner.metadata
    update_gallery(gallery_path, store_rule, meta.embedding_space_id, meta.embedding_dim)
    console.print(f"[green]stored the rule in[/] {gallery_path}")

