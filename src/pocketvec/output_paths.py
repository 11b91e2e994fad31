"""Output paths checked before any work starts: a long run must not fail at its last write."""

from __future__ import annotations

import os
from pathlib import Path

from pocketvec.errors import ConfigError
from pocketvec.file_kinds import writable_target


def _nearest_existing(path: Path) -> Path:
    for candidate in (path, *path.parents):
        if os.path.lexists(candidate):
            return candidate
    return Path(".")


def _check_folder_writable(folder: Path, option: str, path: Path) -> None:
    existing = _nearest_existing(folder)
    if not existing.is_dir():
        raise ConfigError(f"{option} {path}: {existing} is a file, not a folder")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise ConfigError(f"{option} {path}: the folder {existing} is not writable")


def check_output_file(path: str | Path, option: str) -> None:
    """`path` can be written as a file (its folder exists or can be made, and is writable)."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError(f"{option} {path}: is a folder; expected a file name")
    try:
        path = writable_target(path)
    except ConfigError as e:
        raise ConfigError(f"{option} {e}") from None
    _check_folder_writable(path.parent, option, path)


def check_output_folder(path: str | Path, option: str) -> None:
    """`path` can be used as an output folder (it is one, or can be made, and is writable)."""
    path = Path(path)
    if path.exists() and not path.is_dir():
        raise ConfigError(f"{option} {path}: is a file; expected a folder")
    _check_folder_writable(path, option, path)
