"""From image folders to galleries and labelled embeddings (the work behind the CLI commands)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pocketvec.data.items import load_items
from pocketvec.errors import GalleryError, ImageLoadError
from pocketvec.runtime.engines import Engine
from pocketvec.runtime.gallery import Gallery, Skipped
from pocketvec.runtime.images import content_hash


def labelled_images(source: str | Path, layout: str | None = None) -> list[tuple[Path, str]]:
    """(path, label) of a folder (flat: label = file name; one folder per label) or CSV manifest;
    `layout` forces one of pocketvec.data.items.LAYOUTS instead of detecting it."""
    return [(entry.path, entry.label) for entry in load_items(source, layout, check_images=False)]


@dataclass
class LabelledEmbeddings:
    embeddings: np.ndarray
    labels: list[str]
    paths: list[Path]
    failures: list[ImageLoadError] = field(default_factory=list)


def query_layout(source: str | Path) -> str | None:
    """Query photos are one sub-folder per label (or a CSV), even when each label has one photo,
    which a layout guess would read as a flat folder of items."""
    return "folders" if Path(source).is_dir() else None


def embed_labelled(engine: Engine, source: str | Path, batch_size: int = 32,
                   progress: bool = False, layout: str | None = None) -> LabelledEmbeddings:
    """Embed a labelled folder; files that do not decode are listed in `failures`, the rest proceed."""
    entries = labelled_images(source, layout)
    label_of = {path: label for path, label in entries}
    result = engine.embed_files([path for path, _ in entries], batch_size, progress)
    return LabelledEmbeddings(result.embeddings, [label_of[p] for p in result.paths], result.paths, result.failures)


@dataclass
class EnrollReport:
    added: int = 0
    skipped: list[Skipped] = field(default_factory=list)
    failures: list[ImageLoadError] = field(default_factory=list)


def enroll(engine: Engine, gallery: Gallery, source: str | Path, batch_size: int = 32,
           progress: bool = False) -> EnrollReport:
    """Add the images of `source` to `gallery`; duplicates and broken files are reported."""
    gallery.check_model(engine.metadata.embedding_space_id)
    found = embed_labelled(engine, source, batch_size, progress)
    added = gallery.add(found.embeddings, found.labels, [content_hash(p) for p in found.paths])
    return EnrollReport(added.added, added.skipped, found.failures)


def build_gallery(engine: Engine, source: str | Path, dtype: str = "float32", batch_size: int = 32,
                  progress: bool = False) -> tuple[Gallery, EnrollReport]:
    """A new gallery of every image in `source`, tied to the engine's model."""
    meta = engine.metadata
    gallery = Gallery(meta.embedding_space_id, meta.embedding_dim, dtype, accept_rule=meta.accept_rule)
    report = enroll(engine, gallery, source, batch_size, progress)
    if gallery.count == 0:
        raise GalleryError(f"{source}: no image could be enrolled ({len(report.failures)} failed to load)")
    return gallery, report


def open_gallery(engine: Engine, path: str | Path) -> Gallery:
    """Load a gallery and refuse it unless the engine's model made it."""
    return Gallery.load(path, engine.metadata.embedding_space_id)
