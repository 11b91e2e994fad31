"""`pocketvec gallery build|add|remove|upgrade|compact|info`: the enrolled items of one model."""

from __future__ import annotations

from pathlib import Path

import typer

from pocketvec.cli import choices
from pocketvec.cli._common import READ_TEXT
from pocketvec.runtime.gallery.views import MAX_VIEWS, GalleryViews

app = typer.Typer(help="Build and edit galleries (.pvg) of enrolled items. "
                  "Example: pocketvec gallery build model.onnx --images items/ --out items.pvg",
                  no_args_is_help=True)

ENGINE = choices.option("auto", "--engine", what="engine", choices=choices.ENGINES)
THREADS = typer.Option(None, "--threads", help="Inference threads (default: onnxruntime's choice).")
IMAGES_HELP = "Folder of item images (file name or sub-folder = label) or CSV."
BATCH = typer.Option(32, "--batch-size", min=1, help="Images per inference batch.")
LOCK_TIMEOUT = typer.Option(60.0, "--lock-timeout",
                            help="Seconds to wait while another process writes the gallery.")


VIEWS = typer.Option(GalleryViews.count, "--views", min=0, max=MAX_VIEWS,
                     help="Simulated phone photos per item blended into its row (0: the clean image alone).")


@app.command("build")
def build_command(
    model: Path = typer.Argument(..., help="Exported model (.onnx, .mlpackage)."),
    images: Path = typer.Option(..., "--images", help=IMAGES_HELP),
    out: Path = typer.Option(..., "--out", help="Gallery file to write (.pvg)."),
    dtype: str = choices.option("float32", "--dtype", what="gallery dtype", choices=choices.GALLERY_DTYPES),
    local_maps: str | None = choices.option(
        None, "--local-maps", what="local maps", choices=choices.LOCAL_MAPS,
        help="How rows keep the re-rank's local maps: full (every location, float16, 44 KB an item) or compact "
             "(the item's content locations, checkerboard, coded with the model's codebook: about 1.6 KB). "
             "Default: compact for --dtype int8 when the model carries a codebook, else full."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing gallery file."),
    views: int = VIEWS,
    text: bool | None = READ_TEXT,
    engine: str = ENGINE, threads: int | None = THREADS, batch_size: int = BATCH, lock_timeout: float = LOCK_TIMEOUT,
) -> None:
    """Embed every image of a folder into a new gallery; exits 1 when any image was skipped as unreadable.
    Each row blends the item's clean embedding with those of --views simulated phone photos of it; each item's
    printed text is read and kept for text verification when the OCR models are installed (--no-text: not).

    Example: pocketvec gallery build model.onnx --images items/ --out items.pvg --dtype int8 --local-maps compact
    """
    from pocketvec.output_paths import check_output_file
    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.enroll import build_gallery
    from pocketvec.runtime.gallery import check_dtype
    from pocketvec.runtime.gallery.update import refuse_existing, write_new_gallery
    from pocketvec.runtime.printed_text import wanted_models

    from .output import safe, settings
    from .runtime_tables import console, report_problems

    check_dtype(dtype)
    check_output_file(out, "--out")
    refuse_existing(out, overwrite)  # before any work; checked again under the lock
    runner = open_engine(model, engine, threads)
    gallery, report = build_gallery(runner, images, dtype, batch_size, progress=settings.progress,
                                    views=GalleryViews(count=views), text_models=wanted_models(text),
                                    local_maps=local_maps)
    write_new_gallery(out, gallery, overwrite, lock_timeout)
    report_problems(report.failures, report.skipped)
    texts = f", printed text read ({gallery.text_reader})" if gallery.reads_text else ""
    maps = "" if gallery.local_shape is None else f", {'compact' if gallery.compact else 'full'} local maps"
    console.print(f"[green]wrote[/] {safe(out)}: {gallery.count} rows, {len(gallery.label_counts())} labels, "
                  f"{dtype}{maps}{texts}")
    if report.failures:
        console.print(f"[yellow]{len(report.failures)} image(s) skipped as unreadable[/]", highlight=False)
        raise typer.Exit(1)


@app.command("add")
def add_command(
    model: Path = typer.Argument(..., help="The model that made the gallery."),
    gallery_path: Path = typer.Argument(..., metavar="GALLERY", help="Gallery file (.pvg)."),
    images: Path = typer.Option(..., "--images", help=IMAGES_HELP),
    views: int = VIEWS,
    engine: str = ENGINE, threads: int | None = THREADS, batch_size: int = BATCH, lock_timeout: float = LOCK_TIMEOUT,
) -> None:
    """Enroll more images (rows made as `gallery build` makes them); images already enrolled are reported,
    not duplicated; exits 1 when any image was skipped as unreadable. Another process's concurrent changes are kept.

    Example: pocketvec gallery add model.onnx items.pvg --images new_items/
    """
    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.enroll import enroll_file

    from .output import safe, settings
    from .runtime_tables import console, report_problems

    runner = open_engine(model, engine, threads)
    report, rows = enroll_file(runner, gallery_path, images, batch_size, progress=settings.progress,
                               timeout_s=lock_timeout, views=GalleryViews(count=views))
    report_problems(report.failures, report.skipped)
    console.print(f"added {report.added} rows to {safe(gallery_path)} (now {rows} rows)")
    if report.failures:
        raise typer.Exit(1)


@app.command("remove")
def remove_command(
    gallery_path: Path = typer.Argument(..., metavar="GALLERY", help="Gallery file (.pvg)."),
    labels: list[str] = typer.Argument(..., help="Labels to remove (every row of each)."),
    lock_timeout: float = LOCK_TIMEOUT,
) -> None:
    """Remove labels from a gallery.

    Example: pocketvec gallery remove items.pvg flag_chad
    """
    from pocketvec.runtime.gallery import Gallery
    from pocketvec.runtime.gallery.update import update_gallery

    from .output import safe
    from .runtime_tables import console

    def remove_labels(gallery: Gallery) -> tuple[tuple[int, int], bool]:
        removed = sum(gallery.remove(label) for label in labels)
        return (removed, gallery.count), True

    removed, rows = update_gallery(gallery_path, remove_labels, timeout_s=lock_timeout)
    console.print(f"removed {removed} rows from {safe(gallery_path)} (now {rows} rows)")


@app.command("upgrade")
def upgrade_command(
    gallery_path: Path = typer.Argument(..., metavar="GALLERY", help="Gallery file (.pvg)."),
    lock_timeout: float = LOCK_TIMEOUT,
) -> None:
    """Re-save a gallery in the current format version (its rows unchanged).

    Example: pocketvec gallery upgrade items.pvg
    """
    import warnings

    from pocketvec.errors import PocketvecWarning
    from pocketvec.runtime.gallery.file import VERSION
    from pocketvec.runtime.gallery.update import update_gallery

    from .output import safe
    from .runtime_tables import console

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", PocketvecWarning)  # the old version is why we are here
        rows = update_gallery(gallery_path, lambda gallery: (gallery.count, True), timeout_s=lock_timeout)
    console.print(f"wrote {safe(gallery_path)} as format version {VERSION} ({rows} rows)")


@app.command("compact")
def compact_command(
    gallery_path: Path = typer.Argument(..., metavar="GALLERY", help="Gallery file (.pvg)."),
    lock_timeout: float = LOCK_TIMEOUT,
) -> None:
    """Rewrite a gallery as one part: the segments that `gallery add` appended are folded in (and an append that
    did not finish is dropped). Its rows and matches are unchanged.

    Example: pocketvec gallery compact items.pvg
    """
    from pocketvec.runtime.gallery.update import compact_gallery

    from .output import safe
    from .runtime_tables import console

    rows, parts, size = compact_gallery(gallery_path, lock_timeout)
    console.print(f"wrote {safe(gallery_path)} as one part ({rows} rows, {parts} parts before, {size:,} bytes)")


@app.command("info")
def info_command(
    gallery_path: Path = typer.Argument(..., metavar="GALLERY", help="Gallery file (.pvg)."),
    list_labels: bool = typer.Option(False, "--labels", help="List every label with its row count."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a gallery's model id, size, dtype, accept rule and local maps (locations, channels; local re-rank).

    Example: pocketvec gallery info items.pvg --labels
    """
    import json
    from dataclasses import asdict

    from pocketvec.runtime.gallery import Gallery

    from .output import safe
    from .runtime_tables import console

    gallery = Gallery.load(gallery_path)
    info = {"file": str(gallery_path), "embedding_space_id": gallery.embedding_space_id, "dim": gallery.dim,
            "dtype": gallery.dtype, "rows": gallery.count, "labels": len(gallery.label_counts()),
            "accept_rule": asdict(gallery.accept_rule) if gallery.accept_rule else None,
            "created_by": gallery.created_by, "model_digest": gallery.model_digest,
            "bytes": gallery_path.stat().st_size, "format_version": gallery.saved.version,
            "parts": gallery.saved.parts,
            "local_maps": list(gallery.local_shape) if gallery.local_shape else None,
            "local_codes": ({"digest": gallery.locals.digest, "subvectors": gallery.locals.subvectors,
                             "coded_locations": gallery.locals.coded} if gallery.compact else None),
            "text_reader": gallery.text_reader,
            "rows_with_text": None if gallery.texts is None else sum(bool(t.strip()) for t in gallery.texts)}
    if list_labels:
        info["label_rows"] = gallery.label_counts()
    if as_json:
        print(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        console.print(f"[bold]{key}[/]: {safe(value)}", highlight=False)
