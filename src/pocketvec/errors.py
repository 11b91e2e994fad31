"""User-facing errors: the CLI prints these as one clear line instead of a traceback."""

from __future__ import annotations

from pathlib import Path


class PocketvecError(Exception):
    """Base class of every error that is the user's input, not a bug in pocketvec."""


def display_path(path: str | Path) -> str:
    """A path as text that can always be printed: bytes of a non-UTF-8 name shown as \\xNN."""
    try:
        raw = str(path).encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:  # a lone surrogate that is not an escaped byte
        raw = str(path).encode("utf-8", "backslashreplace")
    return raw.decode("utf-8", "backslashreplace")


class ImageLoadError(PocketvecError):
    """An image file that cannot be decoded (corrupt, truncated, not an image, too large)."""

    def __init__(self, path: str | Path, problem: str) -> None:
        self.path = Path(path)
        self.problem = problem
        super().__init__(f"{display_path(self.path)}: {problem}")


class DatasetError(PocketvecError):
    """An item folder or manifest that cannot serve as a dataset."""


class ModelFileError(PocketvecError):
    """A model, checkpoint or run folder that is missing, foreign or broken."""


class GalleryError(PocketvecError):
    """A gallery file that is missing, truncated, tampered with or made by another model."""


class ConfigError(PocketvecError):
    """A configuration value or key that is not valid."""


class NotBuiltYet(PocketvecError):
    """A command whose feature is not built yet."""


class PocketvecWarning(UserWarning):
    """Something the user should know that does not stop the work (the CLI prints it as one line)."""
