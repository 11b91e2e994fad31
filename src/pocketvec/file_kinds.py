"""What pocketvec reads and writes: regular files (and folders), reached through symlinks resolved once.

A fifo blocks whoever opens it and a device is not data (replacing /dev/null's node breaks the
system): both, and sockets, are refused by name before anything opens them. A symlink is resolved
once, so the lock, the read and the write of one file use its real path: a writer replaces the
target, never the link, and two names of one file share one lock.
"""

from __future__ import annotations

import os
import stat
from pathlib import Path

from pocketvec.errors import ConfigError, PocketvecError, display_path

_KINDS = ((stat.S_ISREG, "file"), (stat.S_ISDIR, "folder"), (stat.S_ISFIFO, "named pipe (fifo)"),
          (stat.S_ISCHR, "character device"), (stat.S_ISBLK, "block device"), (stat.S_ISSOCK, "socket"))


def file_kind(path: str | Path) -> str | None:
    """"file", "folder", "named pipe (fifo)", a device or "socket" (symlinks followed, nothing opened);
    None when nothing is there."""
    try:
        mode = os.stat(path).st_mode
    except (OSError, ValueError):
        return None
    return next((kind for test, kind in _KINDS if test(mode)), "special file")


def refuse_special(path: str | Path, error: type[PocketvecError] = ConfigError) -> None:
    """Refuse a fifo, device or socket at `path` before it is opened (a fifo would block forever)."""
    kind = file_kind(path)
    if kind not in (None, "file", "folder"):
        raise error(f"{display_path(path)}: is a {kind}, not a regular file; pocketvec reads and writes only "
                    "regular files")


def real_path(path: str | Path) -> Path:
    """`path` with every symlink resolved: the one name its lock, reads and writes use."""
    return Path(os.path.realpath(path))


def writable_target(path: str | Path, error: type[PocketvecError] = ConfigError) -> Path:
    """The real file a writer replaces (symlinks resolved); refused unless missing or a regular file."""
    real = real_path(path)
    kind = file_kind(real)
    if kind not in (None, "file"):
        raise error(f"{display_path(path)}: is a {kind}, not a regular file; pocketvec replaces only regular files")
    return real


def file_size(path: str | Path) -> int:
    """Bytes on disk of a file, or of every file in a folder (an .mlpackage)."""
    path = Path(path)
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size
