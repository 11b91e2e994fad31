"""`pocketvec match`: which enrolled item is in each photo, or "unknown"."""

from __future__ import annotations

from pathlib import Path

import typer

from pocketvec.cli import choices, ranged
from pocketvec.cli._common import ITEM_ZOOM, TEXT


def match(
    model: Path = typer.Argument(..., help="Exported model (.onnx, .mlpackage)."),
    gallery_path: Path = typer.Argument(..., metavar="GALLERY", help="Gallery file (.pvg) made by this model."),
    images: list[Path] = typer.Argument(..., help="Photos to recognise."),
    top_k: int = typer.Option(3, "--top-k", min=1, help="Labels to show per photo."),
    threshold: float | None = ranged.option(None, "--threshold", key="accept_rule.threshold",
                                            help="Override the gallery's accept threshold."),
    margin: float | None = ranged.option(None, "--margin", key="accept_rule.margin",
                                         help="Override the gallery's accept margin."),
    as_json: bool = typer.Option(False, "--json", help="Print one JSON object instead of a table."),
    text: bool | None = TEXT,
    item_zoom: bool = ITEM_ZOOM,
    engine: str = choices.option("auto", "--engine", what="engine", choices=choices.ENGINES),
    threads: int | None = typer.Option(None, "--threads", help="Inference threads."),
) -> None:
    """Match photos against a gallery. Example: pocketvec match model.onnx items.pvg photo1.jpg photo2.jpg --json"""
    import dataclasses
    import json

    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.enroll import open_gallery
    from pocketvec.runtime.item_zoom import ItemZoom
    from pocketvec.runtime.matcher import Matcher, resolve_rule, uncalibrated_note
    from pocketvec.runtime.printed_text import photo_texts
    from pocketvec.runtime.zoomed_photos import zoom_to_items

    from .output import err_console, safe
    from .runtime_tables import console, match_table, report_problems

    runner = open_engine(model, engine, threads)
    gallery = open_gallery(runner, gallery_path)
    overrides = {k: v for k, v in (("threshold", threshold), ("margin", margin)) if v is not None}
    base, source = resolve_rule(gallery.accept_rule)
    if source == "default" and not overrides:  # once, on stderr: stdout stays the results (and valid JSON)
        note = uncalibrated_note(str(gallery_path), str(model))
        err_console.print(f"[yellow]note:[/] {safe(note)}", highlight=False)
    rule = dataclasses.replace(base, **overrides)
    matcher = Matcher.for_model(runner.metadata, gallery, rule)
    result = runner.embed_files(images, query=True)
    result, regions = zoom_to_items(runner, gallery, result, result.paths, ItemZoom() if item_zoom else None)
    texts = photo_texts(gallery, result.paths, text, regions)
    matches = matcher.match_embedded(result, top_k, texts) if len(result.paths) else []
    if as_json:
        rows = [{"image": str(p), **m.to_dict()} for p, m in zip(result.paths, matches, strict=True)]
        print(json.dumps({"rule": dataclasses.asdict(rule), "results": rows,
                          "errors": [{"image": str(e.path), "problem": e.problem} for e in result.failures]}, indent=2))
    else:
        report_problems(result.failures)
        if matches:
            console.print(match_table(result.paths, matches))
        console.print(f"rule: score >= {rule.threshold:.2f} and margin >= {rule.margin:.2f}", highlight=False)
    if result.failures:
        raise typer.Exit(1)
