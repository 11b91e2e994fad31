"""Atomic file writes: a temp file in the same folder, fsync, rename. A crash never leaves half a file."""

from __future__ import annotations

import glob
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pocketvec.file_kinds import real_path, writable_target


def _usual_permissions(path: str | Path) -> None:
    """mkstemp creates 0600; give the file the permissions a plain open() would."""
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(path, 0o666 & ~umask)


def _fsync_folder(folder: Path) -> None:
    fd = os.open(folder, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


TEMP_SUFFIX = ".tmp"


def remove_stray_temps(path: str | Path) -> list[Path]:
    """Delete the temp files that killed writers of `path` left behind. Call it only while holding
    the file's write lock (pocketvec.file_lock): a live writer's temp file looks the same. The temps
    are looked for beside the real file (symlinks resolved), where writers make them."""
    path = real_path(path)
    strays = sorted(path.parent.glob(f"{glob.escape(_temp_prefix(path))}*{TEMP_SUFFIX}"))
    for stray in strays:
        stray.unlink(missing_ok=True)
    return strays


def write_bytes_atomic(path: str | Path, data: bytes, before_rename: Callable[[], None] | None = None) -> Path:
    """Write `data` to `path` atomically; the folder is created if needed. `before_rename` runs
    once the temp file is complete and synced (a fault-injection point for tests). A symlink is followed:
    its target is replaced; anything but a regular file there is refused (pocketvec.file_kinds). -> `path`."""
    named, path = Path(path), writable_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=TEMP_SUFFIX, dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        _usual_permissions(tmp)
        if before_rename is not None:
            before_rename()
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
    _fsync_folder(path.parent)
    return named


@contextmanager
def atomic_output(final: Path) -> Iterator[Path]:
    """Yield a temp path next to `final` for a writer (a tool, an encoder); on success fsync and rename it
    (over a symlink's target; anything but a regular file there is refused)."""
    final = writable_target(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".tmp-{final.stem}-", suffix=final.suffix, dir=final.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        _usual_permissions(tmp)
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)
