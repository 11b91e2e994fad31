"""An advisory write lock on a file (fcntl.flock on a `.NAME.lock` file beside it).

The lock file is never removed: removing it would let two writers hold locks on two different
files. A writer that is killed loses its lock with its file descriptor, so a lock never goes stale.
"""

from __future__ import annotations

import fcntl
import os
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from pocketvec.checks import check_number
from pocketvec.errors import PocketvecError
from pocketvec.file_kinds import real_path

DEFAULT_TIMEOUT_S = 60.0
MAX_TIMEOUT_S = 86400.0
POLL_S = 0.05


def lock_path(path: str | Path) -> Path:
    """The lock file of the real file behind `path` (symlinks resolved): one lock per file, whatever its name."""
    path = real_path(path)
    return path.with_name(f".{path.name}.lock")


@contextmanager
def exclusive_lock(path: str | Path, timeout_s: float, what: str, error: type[PocketvecError]) -> Iterator[None]:
    """Hold the write lock of `path` (waiting up to `timeout_s`); `error` names `what` on a timeout."""
    check_number("lock timeout (seconds)", timeout_s, 0.0, MAX_TIMEOUT_S, error=error)
    path = Path(path)
    sidecar = lock_path(path)
    try:
        sidecar.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(sidecar, os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o666)
    except OSError as e:
        raise error(f"{path}: cannot create the lock file {sidecar} ({e.strerror or e})") from e
    try:
        _acquire(fd, path, timeout_s, what, error)
        try:
            yield
        finally:
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)


def _acquire(fd: int, path: Path, timeout_s: float, what: str, error: type[PocketvecError]) -> None:
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            return
        except BlockingIOError:
            if time.monotonic() >= deadline:
                raise error(f"{path}: {what} is being written by another process (waited {timeout_s:g} s "
                            "for its lock); try again when that process is done") from None
            time.sleep(POLL_S)
