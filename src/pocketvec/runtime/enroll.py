"""From image folders to galleries and labelled embeddings (the work behind the CLI commands)."""

from __future__ import annotations

import warnings
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pocketvec.errors import GalleryError, ImageLoadError, PocketvecWarning
from pocketvec.file_lock import DEFAULT_TIMEOUT_S
from pocketvec.runtime.content_box import content_boxes
from pocketvec.runtime.engines import Engine
from pocketvec.runtime.engines.base import EmbedResult
from pocketvec.runtime.gallery import Gallery, Skipped, model_local_shape
from pocketvec.runtime.gallery.item_rows import item_rows
from pocketvec.runtime.gallery.store import model_codebook
from pocketvec.runtime.gallery.update import update_gallery
from pocketvec.runtime.gallery.views import GalleryViews
from pocketvec.runtime.images import is_image_path, load_image
from pocketvec.runtime.items import load_items
from pocketvec.runtime.printed_text import read_item_texts
from pocketvec.runtime.progress import progress_bar


def labelled_images(source: str | Path, layout: str | None = None) -> list[tuple[Path, str]]:
    """(path, label) of a folder (flat: label = file name; one folder per label) or CSV manifest;
    `layout` forces one of pocketvec.runtime.items.LAYOUTS instead of detecting it."""
    return [(entry.path, entry.label) for entry in load_items(source, layout, check_images=False)]


@dataclass
class LabelledEmbeddings:
    embeddings: np.ndarray
    labels: list[str]
    paths: list[Path]
    failures: list[ImageLoadError] = field(default_factory=list)
    locals: np.ndarray | None = None  # (N, locations, channels) for a model with a local re-rank
    texts: list[str] | None = None  # the printed text of each image, when it was read
    boxes: np.ndarray | None = None  # (N, 4) each item's content box in map locations, with `locals`


def _valid_label(label: str) -> bool:
    try:
        label.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return bool(label.strip())


def unusable_entries(source: str | Path) -> list[ImageLoadError]:
    """Entries of a folder named like images that are not regular files (a dangling link, a folder
    named x.jpg, a pipe): the dataset scan passes over them, so they are reported here."""
    source = Path(source)
    if not source.is_dir():
        return []
    found = []
    for path in sorted(source.rglob("*")):
        hidden = any(part.startswith(".") for part in path.relative_to(source).parts)
        if not hidden and is_image_path(path) and not path.is_file() and not _holds_images(path):
            try:
                load_image(path)
            except ImageLoadError as e:
                found.append(e)
    return found


def _holds_images(folder: Path) -> bool:
    """A label folder of the folder-per-label layout may itself be named like an image."""
    return folder.is_dir() and any(is_image_path(p) for p in folder.iterdir())


def query_layout(source: str | Path) -> str | None:
    """Query photos are one sub-folder per label (or a CSV), even when each label has one photo,
    which a layout guess would read as a flat folder of items."""
    return "folders" if Path(source).is_dir() else None


def embed_labelled(engine: Engine, source: str | Path, batch_size: int = 32, progress: bool = False,
                   layout: str | None = None, query: bool = False) -> LabelledEmbeddings:
    """Embed a labelled folder (items, or with `query` photos to recognise); files that cannot be used (do
    not decode, a file name that is not UTF-8, not a regular file) are listed in `failures` by name, the
    rest proceed."""
    usable, failures = _usable_entries(source, layout)
    label_of = dict(usable)
    result = engine.embed_files([path for path, _ in usable], batch_size, progress, query)
    return LabelledEmbeddings(result.embeddings, [label_of[p] for p in result.paths], result.paths,
                              failures + result.failures, result.locals, boxes=item_boxes(engine, result))


def item_boxes(engine: Engine, result: EmbedResult) -> np.ndarray | None:
    """Each embedded image's content box (runtime/content_box.py), for a model with a local re-rank."""
    rerank = engine.metadata.local_rerank
    if rerank is None or result.sizes is None:
        return None
    return content_boxes(result.sizes, engine.metadata.preprocess, rerank.locations)


def _usable_entries(source: str | Path, layout: str | None) -> tuple[list[tuple[Path, str]], list[ImageLoadError]]:
    """The (path, label) entries of `source` to embed, and the entries that cannot be used (not regular
    files, a file name that is not UTF-8 or gives no label)."""
    entries = labelled_images(source, layout)
    failures = unusable_entries(source)
    bad_name = "the file name is not valid UTF-8 text (or gives an empty label); rename the file"
    failures += [ImageLoadError(path, bad_name) for path, label in entries if not _valid_label(label)]
    return [(path, label) for path, label in entries if _valid_label(label)], failures


@dataclass
class EnrollReport:
    added: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    failures: list[ImageLoadError] = field(default_factory=list)


def embed_items(engine: Engine, source: str | Path, batch_size: int = 32, progress: bool = False,
                views: GalleryViews | None = None,
                text_models: str | None = None) -> tuple[LabelledEmbeddings, list[str]]:
    """Embed a labelled folder of items as gallery rows: each clean embedding blended with its simulated
    photos' (pocketvec.runtime.gallery.views; `views` None: the default, GalleryViews()), and with
    `text_models` each item's printed text read (pocketvec.runtime.printed_text). -> (the rows, each file's
    content hash)."""
    usable, failures = _usable_entries(source, None)
    views = views or GalleryViews()
    what = f"gallery rows ({views.count} photos per item)" if views.count else f"embedding ({engine.name})"
    with progress_bar(what, len(usable), enabled=progress) as advance:
        rows, hashes = item_rows(engine, [path for path, _ in usable], views, batch_size=batch_size,
                                 failures=failures, advance=advance)
    label_of = dict(usable)
    found = LabelledEmbeddings(rows.embeddings, [label_of[p] for p in rows.paths], rows.paths, failures,
                               rows.locals, boxes=item_boxes(engine, rows))
    if text_models is not None:
        with progress_bar("reading the items' text", len(found.paths), enabled=progress) as advance:
            found.texts = read_item_texts(found.paths, text_models, advance)
    return found, hashes


def gallery_text_models(gallery: Gallery, wanted: str | None) -> str | None:
    """The OCR models that enrol into `gallery`: the ones that read its texts, `wanted` for a new gallery
    (None: do not read text); a gallery of rows without texts reads none."""
    if gallery.reads_text:
        return gallery.text_reader
    return wanted if gallery.count == 0 else None


def enroll(engine: Engine, gallery: Gallery, source: str | Path, batch_size: int = 32,
           progress: bool = False, views: GalleryViews | None = None, text_models: str | None = None) -> EnrollReport:
    """Add the images of `source` to `gallery`; duplicates and broken files are reported. `text_models`: read
    the items' printed text with these OCR models into a new gallery (one that keeps texts reads them anyway)."""
    meta = engine.metadata
    gallery.check_model(meta.embedding_space_id, meta.embedding_dim, local_shape=model_local_shape(meta))
    gallery.check_codebook(model_codebook(meta))
    text_models = gallery_text_models(gallery, text_models)
    found, hashes = embed_items(engine, source, batch_size, progress, views, text_models)
    added = gallery.add(found.embeddings, found.labels, hashes, found.locals, meta, found.texts, text_models,
                        found.boxes)
    return EnrollReport(added.added, added.skipped, found.failures)


def enroll_file(engine: Engine, path: str | Path, source: str | Path, batch_size: int = 32,
                progress: bool = False, timeout_s: float = DEFAULT_TIMEOUT_S,
                views: GalleryViews | None = None) -> tuple[EnrollReport, int]:
    """Add the images of `source` to the gallery file at `path`: embedded first, then added to the
    file as it is under its write lock (a concurrent writer's rows are kept). -> (report, rows now)."""
    meta = engine.metadata
    # a foreign or broken gallery is refused before any image is embedded
    text_models = gallery_text_models(open_gallery(engine, path), None)
    found, hashes = embed_items(engine, source, batch_size, progress, views, text_models)

    def add_rows(gallery: Gallery) -> tuple[tuple[EnrollReport, int], bool]:
        added = gallery.add(found.embeddings, found.labels, hashes, found.locals, meta, found.texts, text_models,
                            found.boxes)
        return (EnrollReport(added.added, added.skipped, found.failures), gallery.count), added.added > 0

    return update_gallery(path, add_rows, meta, timeout_s)


def build_gallery(engine: Engine, source: str | Path, dtype: str = "float32", batch_size: int = 32,
                  progress: bool = False, views: GalleryViews | None = None,
                  text_models: str | None = None, local_maps: str | None = None) -> tuple[Gallery, EnrollReport]:
    """A new gallery of every image in `source`, tied to the engine's model (keeping the items' printed text
    read with `text_models`, when given; its local maps full or compact, None: the default for `dtype`)."""
    meta = engine.metadata
    gallery = Gallery.for_model(meta, dtype, accept_rule=meta.accept_rule, local_maps=local_maps)
    report = enroll(engine, gallery, source, batch_size, progress, views, text_models)
    if gallery.count == 0:
        raise GalleryError(f"{source}: no image could be enrolled ({len(report.failures)} failed to load)")
    return gallery, report


def open_gallery(engine: Engine, path: str | Path) -> Gallery:
    """Load a gallery to use with the engine's model: refused unless that model made it; a gallery built by
    another export of the same run is used, with a one-line PocketvecWarning naming both weights digests."""
    gallery = Gallery.load_for(path, engine.metadata)
    note = gallery.other_export_note(engine.metadata, str(path))
    if note is not None:
        warnings.warn(PocketvecWarning(note), stacklevel=2)
    return gallery
