"""`pocketvec gallery build|add|remove|info`: the enrolled items of one model."""

from __future__ import annotations

from pathlib import Path

import typer

from pocketvec.cli import choices

app = typer.Typer(help="Build and edit galleries (.pvg) of enrolled items. "
                  "Example: pocketvec gallery build model.onnx --images items/ --out items.pvg",
                  no_args_is_help=True)

ENGINE = choices.option("auto", "--engine", what="engine", choices=choices.ENGINES)
THREADS = typer.Option(None, "--threads", help="Inference threads (default: onnxruntime's choice).")
IMAGES_HELP = "Folder of item images (file name or sub-folder = label) or CSV."
BATCH = typer.Option(32, "--batch-size", min=1, help="Images per inference batch.")


@app.command("build")
def build_command(
    model: Path = typer.Argument(..., help="Exported model (.onnx, .mlpackage)."),
    images: Path = typer.Option(..., "--images", help=IMAGES_HELP),
    out: Path = typer.Option(..., "--out", help="Gallery file to write (.pvg)."),
    dtype: str = choices.option("float32", "--dtype", what="gallery dtype", choices=choices.GALLERY_DTYPES),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace an existing gallery file."),
    engine: str = ENGINE, threads: int | None = THREADS, batch_size: int = BATCH,
) -> None:
    """Embed every image of a folder into a new gallery.

    Example: pocketvec gallery build model.onnx --images items/ --out items.pvg --dtype int8
    """
    from pocketvec.errors import GalleryError
    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.enroll import build_gallery

    from .output import settings
    from .runtime_tables import console, report_problems

    if out.exists() and not overwrite:
        raise GalleryError(f"{out} exists; use `pocketvec gallery add` to extend it or --overwrite to replace it")
    runner = open_engine(model, engine, threads)
    gallery, report = build_gallery(runner, images, dtype, batch_size, progress=settings.progress)
    gallery.save(out)
    report_problems(report.failures, report.skipped)
    console.print(f"[green]wrote[/] {out}: {gallery.count} rows, {len(gallery.label_counts())} labels, {dtype}")


@app.command("add")
def add_command(
    model: Path = typer.Argument(..., help="The model that made the gallery."),
    gallery_path: Path = typer.Argument(..., metavar="GALLERY", help="Gallery file (.pvg)."),
    images: Path = typer.Option(..., "--images", help=IMAGES_HELP),
    engine: str = ENGINE, threads: int | None = THREADS, batch_size: int = BATCH,
) -> None:
    """Enroll more images; images already enrolled are reported, not duplicated.

    Example: pocketvec gallery add model.onnx items.pvg --images new_items/
    """
    from pocketvec.runtime.engines import open_engine
    from pocketvec.runtime.enroll import enroll, open_gallery

    from .output import settings
    from .runtime_tables import console, report_problems

    runner = open_engine(model, engine, threads)
    gallery = open_gallery(runner, gallery_path)
    report = enroll(runner, gallery, images, batch_size, progress=settings.progress)
    if report.added:
        gallery.save(gallery_path)
    report_problems(report.failures, report.skipped)
    console.print(f"added {report.added} rows to {gallery_path} (now {gallery.count} rows)")


@app.command("remove")
def remove_command(
    gallery_path: Path = typer.Argument(..., metavar="GALLERY", help="Gallery file (.pvg)."),
    labels: list[str] = typer.Argument(..., help="Labels to remove (every row of each)."),
) -> None:
    """Remove labels from a gallery.

    Example: pocketvec gallery remove items.pvg flag_chad
    """
    from pocketvec.runtime.gallery import Gallery

    from .runtime_tables import console

    gallery = Gallery.load(gallery_path)
    removed = sum(gallery.remove(label) for label in labels)
    gallery.save(gallery_path)
    console.print(f"removed {removed} rows from {gallery_path} (now {gallery.count} rows)")


@app.command("info")
def info_command(
    gallery_path: Path = typer.Argument(..., metavar="GALLERY", help="Gallery file (.pvg)."),
    list_labels: bool = typer.Option(False, "--labels", help="List every label with its row count."),
    as_json: bool = typer.Option(False, "--json", help="Print JSON."),
) -> None:
    """Show a gallery's model id, size, dtype and accept rule.

    Example: pocketvec gallery info items.pvg --labels
    """
    import json
    from dataclasses import asdict

    from pocketvec.runtime.gallery import Gallery

    from .runtime_tables import console

    gallery = Gallery.load(gallery_path)
    info = {"file": str(gallery_path), "embedding_space_id": gallery.embedding_space_id, "dim": gallery.dim,
            "dtype": gallery.dtype, "rows": gallery.count, "labels": len(gallery.label_counts()),
            "accept_rule": asdict(gallery.accept_rule) if gallery.accept_rule else None,
            "created_by": gallery.created_by, "bytes": gallery_path.stat().st_size}
    if list_labels:
        info["label_rows"] = gallery.label_counts()
    if as_json:
        print(json.dumps(info, indent=2))
        return
    for key, value in info.items():
        console.print(f"[bold]{key}[/]: {value}", highlight=False, soft_wrap=True)
