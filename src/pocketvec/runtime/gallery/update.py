"""Changing a gallery file in place, safely with other writers: lock, re-read, change, write.

Every writer of a `.pvg` (gallery build/add/remove/upgrade, calibrate) goes through here, so two
runs at once never lose each other's rows: the second waits for the lock and re-reads the file the
first one wrote. Temp files left by a killed writer are removed while the lock is held. Rows added to a
version-4 file are appended to it as a segment (store.Gallery.write); any other change rewrites it, and
`compact_gallery` folds the segments back into one part.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import TypeVar

from pocketvec.atomic import remove_stray_temps
from pocketvec.errors import GalleryError
from pocketvec.file_kinds import writable_target
from pocketvec.file_lock import DEFAULT_TIMEOUT_S, exclusive_lock
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.metadata import ModelMetadata
from pocketvec.runtime.unit_norm import dequantize

T = TypeVar("T")


@contextmanager
def gallery_lock(path: str | Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> Iterator[Path]:
    """Hold the gallery's write lock; stray temp files of killed writers are removed first. Yields the real
    file (symlinks resolved once): every read and write under the lock uses that name."""
    path = writable_target(path, GalleryError)
    with exclusive_lock(path, timeout_s, "the gallery", GalleryError):
        remove_stray_temps(path)
        yield path


def update_gallery(path: str | Path, change: Callable[[Gallery], tuple[T, bool]],
                   metadata: ModelMetadata | None = None, timeout_s: float = DEFAULT_TIMEOUT_S) -> T:
    """Under the lock: load the gallery as it is now (refused unless the model of `metadata` made it, when
    given), apply `change` (-> result, whether to save), save."""
    with gallery_lock(path, timeout_s) as locked:
        return _change_locked(locked, change, metadata)


def _change_locked(locked: Path, change: Callable[[Gallery], tuple[T, bool]], metadata: ModelMetadata | None) -> T:
    gallery = Gallery.load(locked) if metadata is None else Gallery.load_for(locked, metadata)
    result, changed = change(gallery)
    if changed:
        gallery.write(locked)
    return result


def save_merged(path: str | Path, gallery: Gallery, metadata: ModelMetadata, rows: Sequence[int] | None = None,
                keep_rule: bool = True, timeout_s: float = DEFAULT_TIMEOUT_S) -> Gallery:
    """Save `gallery` to `path` as every writer does: under the lock an existing file is re-read (refused
    unless the model of `metadata` made it) and gets `gallery`'s `rows` (None: all) that it lacks, and with
    `keep_rule` its accept rule, so a concurrent writer's rows are kept; a missing file gets `gallery`.
    -> the gallery as written."""

    def merge(on_disk: Gallery) -> tuple[Gallery, bool]:
        pick = list(range(gallery.count) if rows is None else rows)
        on_disk.add(dequantize(gallery.vectors[pick]), [gallery.labels[i] for i in pick],
                    [gallery.sources[i] for i in pick], gallery.local_maps(pick), metadata,
                    None if gallery.texts is None else [gallery.texts[i] for i in pick], gallery.text_reader)
        if keep_rule and gallery.accept_rule is not None:
            on_disk.accept_rule = gallery.accept_rule
        return on_disk, True

    with gallery_lock(path, timeout_s) as locked:
        if not locked.exists():
            gallery.save(locked)
            return gallery
        return _change_locked(locked, merge, metadata)


def compact_gallery(path: str | Path, timeout_s: float = DEFAULT_TIMEOUT_S) -> tuple[int, int, int]:
    """Rewrite a gallery as one part in the current version (its appended segments folded in, an append that
    did not finish dropped), under the lock. -> (rows, parts before, bytes now)."""
    with gallery_lock(path, timeout_s) as locked:
        gallery = Gallery.load(locked)
        gallery.save(locked)
        return gallery.count, gallery.saved.parts, locked.stat().st_size


def write_new_gallery(path: str | Path, gallery: Gallery, overwrite: bool,
                      timeout_s: float = DEFAULT_TIMEOUT_S) -> Path:
    """Write a new gallery under the lock; an existing file is replaced only with `overwrite`."""
    with gallery_lock(path, timeout_s) as locked:
        refuse_existing(locked, overwrite)
        return gallery.save(locked)


def refuse_existing(path: Path, overwrite: bool) -> None:
    if path.exists() and not overwrite:
        raise GalleryError(f"{path} exists; use `pocketvec gallery add` to extend it or --overwrite to replace it")
