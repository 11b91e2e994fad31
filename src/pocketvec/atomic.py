"""Atomic file writes: a temp file in the same folder, fsync, rename. A crash never leaves half a file.
Folders likewise: filled in a temp folder beside, then renamed into place (`staging_folder`, `replace_folder`).
The process's umask is never changed: temp files are created for the kernel to apply it (`_new_temp`)."""

from __future__ import annotations

import errno
import glob
import os
import secrets
import shutil
import tempfile
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from pathlib import Path

from pocketvec.file_kinds import real_path, writable_target


def _new_temp(folder: Path, prefix: str, suffix: str) -> tuple[int, str]:
    """(fd, path) of a new, empty file in `folder` with a random name. Unlike tempfile.mkstemp (0600), it is
    created with mode 0666 for the kernel to apply the process's umask (and the folder's default ACL) to, so
    the finished file gets the permissions a plain open() would: the umask is never read or changed."""
    for _ in range(100):
        name = os.path.join(folder, f"{prefix}{secrets.token_hex(6)}{suffix}")
        try:
            return os.open(name, os.O_RDWR | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0), 0o666), name
        except FileExistsError:
            continue
    raise FileExistsError(errno.EEXIST, "no free temp file name", str(folder))


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


def write_bytes_atomic(path: str | Path, data: bytes | Iterable[bytes],
                       before_rename: Callable[[], None] | None = None) -> Path:
    """Write `data` (bytes, or chunks of them) to `path` atomically; the folder is created if needed.
    `before_rename` runs once the temp file is complete and synced (a fault-injection point for tests). A
    symlink is followed: its target is replaced; anything but a regular file there is refused
    (pocketvec.file_kinds). -> `path`."""
    named, path = Path(path), writable_target(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = _new_temp(path.parent, _temp_prefix(path), TEMP_SUFFIX)
    try:
        with os.fdopen(fd, "wb") as f:
            for chunk in [data] if isinstance(data, bytes | bytearray | memoryview) else data:
                f.write(chunk)
            f.flush()
            os.fsync(f.fileno())
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
    fd, tmp_name = _new_temp(final.parent, f".tmp-{final.stem}-", final.suffix)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        yield tmp
        with open(tmp, "rb+") as f:
            os.fsync(f.fileno())
        os.replace(tmp, final)
    finally:
        tmp.unlink(missing_ok=True)


@contextmanager
def staging_folder(final: str | Path) -> Iterator[Path]:
    """Yield `final`'s name inside a new hidden temp folder beside `final` (not yet created there) for a
    writer to fill; the temp folder and whatever is left in it are deleted at the end. Swap the result in
    with `replace_folder`."""
    final = Path(final)
    final.parent.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=final.parent, prefix=f".{final.name}.") as tmp:
        yield Path(tmp) / final.name


def replace_folder(staged: Path, final: str | Path) -> Path:
    """Put the complete folder `staged` (from `staging_folder`, so on `final`'s file system) at `final`: an
    existing `final` is first renamed aside into the staging temp folder, then `staged` is renamed into place
    and the old copy deleted. A reader never sees half a folder at `final`. Raises OSError when another writer
    puts a folder at `final` between the two renames. -> `final`."""
    final = Path(final)
    if final.exists():
        old = staged.parent / "previous"
        os.rename(final, old)
        os.rename(staged, final)
        shutil.rmtree(old, ignore_errors=True)
    else:
        os.rename(staged, final)
    _fsync_folder(final.parent)
    return final
