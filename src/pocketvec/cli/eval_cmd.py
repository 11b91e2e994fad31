"""`pocketvec eval` (retrieval metrics) and `pocketvec calibrate` (the accept rule)."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import typer

from pocketvec.cli import choices
from pocketvec.cli._common import ITEM_ZOOM, TEXT


def eval_command(
    model: Path = typer.Argument(..., help="Exported model (.onnx, .mlpackage)."),
    gallery: Path = typer.Option(..., "--gallery", help="Gallery file (.pvg) made by this model, or a labelled "
                                 "folder (or CSV) of item images to enroll now."),
    queries: Path = typer.Option(..., "--queries", help="Folder (one sub-folder per label) or CSV of query photos; "
                                 "labels not in the gallery are distractors whose right answer is 'unknown'."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    sweep: bool = typer.Option(False, "--sweep", help="Also print the pair-level threshold sweep."),
    text: bool | None = TEXT,
    item_zoom: bool = ITEM_ZOOM,
    engine: str = choices.option("auto", "--engine", what="engine", choices=choices.ENGINES),
    threads: int | None = typer.Option(None, "--threads", help="Inference threads."),
    batch_size: int = typer.Option(32, "--batch-size", min=1, help="Images per inference batch."),
) -> None:
    """Decisions under the gallery's accept rule (precision, recall, 'unknown' right), Recall@1/5, TPR at low FPR.

    Example: pocketvec eval model.onnx --gallery items.pvg --queries photos/
    """
    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.evaluation import evaluate
    from pocketvec.runtime.item_zoom import ItemZoom

    from .output import settings
    from .runtime_tables import console, print_eval, report_problems, sweep_table

    report = evaluate(open_engine(model, engine, threads), gallery, queries, batch_size,
                      progress=settings.progress and not as_json, text=text,
                      item_zoom=ItemZoom() if item_zoom else None)
    if as_json:
        print(json.dumps(report.to_dict(), indent=2))
        return
    report_problems(report.failures)
    if sweep:
        console.print(sweep_table(report.sweep, report.best, "pair-level threshold sweep (query x label pairs)"))
    print_eval(report, str(gallery), str(model))


def calibrate(
    model: Path = typer.Argument(..., help="Exported model (.onnx, .mlpackage)."),
    gallery_path: Path = typer.Argument(..., metavar="GALLERY", help="Gallery file (.pvg) made by this model."),
    queries: Path = typer.Option(..., "--queries", help="Labelled photos of the items (folder per label or CSV); "
                                 "labels not in the gallery are distractors that must be rejected. "
                                 "Make them with `pocketvec data photos`."),
    target_precision: float = typer.Option(0.99, "--target-precision", help="Answer precision the rule must reach."),
    best_f1: bool = typer.Option(False, "--best-f1", help="Choose the decision-level best-F1 rule instead."),
    write_model: Path | None = typer.Option(None, "--write-model",
                                            help="Also write the rule into this ONNX model's metadata."),
    dry_run: bool = typer.Option(False, "--dry-run", help="Report only; change no file."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of tables."),
    text: bool | None = TEXT,
    item_zoom: bool = ITEM_ZOOM,
    engine: str = choices.option("auto", "--engine", what="engine", choices=choices.ENGINES),
    threads: int | None = typer.Option(None, "--threads", help="Inference threads."),
) -> None:
    """Choose the accept rule (threshold + margin) on labelled photos and store it in the gallery.

    Example: pocketvec calibrate model.onnx items.pvg --queries photos/ --target-precision 0.99
    """
    from pocketvec.checks import check_number
    from pocketvec.output_paths import check_output_file
    from pocketvec.runtime.calibration import calibrate as run_calibration
    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.enroll import embed_labelled, open_gallery, query_layout
    from pocketvec.runtime.gallery.update import update_gallery
    from pocketvec.runtime.item_zoom import ItemZoom
    from pocketvec.runtime.matcher import scores
    from pocketvec.runtime.model_files import write_accept_rule
    from pocketvec.runtime.printed_text import photo_texts
    from pocketvec.runtime.zoomed_photos import zoom_to_items

    from .output import safe, settings
    from .runtime_tables import console, print_calibration, report_problems

    check_number("--target-precision", target_precision, 0.0, 1.0)
    if write_model is not None:
        check_output_file(write_model, "--write-model")
    runner = open_engine(model, engine, threads)
    gallery = open_gallery(runner, gallery_path)
    found = embed_labelled(runner, queries, progress=settings.progress and not as_json, layout=query_layout(queries),
                           query=True)
    found, regions = zoom_to_items(runner, gallery, found, found.paths, ItemZoom() if item_zoom else None)
    if not as_json:
        report_problems(found.failures)
    similarity = scores(gallery, found.embeddings, found.locals, runner.metadata.local_rerank,
                        photo_texts(gallery, found.paths, text, regions))
    result = run_calibration(similarity, found.labels, gallery.labels,
                             target_precision, "f1" if best_f1 else "recall_at_precision")
    written = []
    if not dry_run:
        if write_model:  # first: it refuses another model before anything is changed
            write_accept_rule(write_model, result.rule, runner.metadata.embedding_space_id)
            written.append(str(write_model))

        def store_rule(stored) -> tuple[None, bool]:  # the file as it is now, under its write lock
            stored.accept_rule = result.rule
            return None, True

        update_gallery(gallery_path, store_rule, runner.metadata)
        written.insert(0, str(gallery_path))
    if as_json:
        print(json.dumps({"rule": dataclasses.asdict(result.rule), "target_reached": result.target_reached,
                          "chosen": dataclasses.asdict(result.chosen), "queries": result.queries,
                          "distractors": result.distractors, "pair_best_f1": dataclasses.asdict(result.pair_best),
                          "written": written,
                          "unreadable": [{"image": str(e.path), "problem": e.problem} for e in found.failures]},
                         indent=2))
        return
    print_calibration(result)
    for path in written[1:]:
        console.print(f"[green]wrote the rule into[/] {safe(path)}")
    if written:
        console.print(f"[green]stored the rule in[/] {safe(gallery_path)}")
