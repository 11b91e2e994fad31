"""Robust image loading shared by training and runtime (Pillow + numpy, no torch).

Every image becomes an RGB uint8 array, upright (EXIF orientation applied), alpha composited on
white. Anything that cannot be decoded raises ImageLoadError naming the file and the problem.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import warnings
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from pocketvec.errors import ImageLoadError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB; transparency is composited on white."""
    if image.mode in ("I;16", "I;16B", "I;16L", "I", "F"):
        # High bit depth greyscale: map the format's full range (not the image's own) to 8 bits.
        values = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.clip(values / _full_scale(image.mode, values) * 255.0 + 0.5, 0, 255)
                                .astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image).convert("RGB")
    return image.convert("RGB")


def _full_scale(mode: str, values: np.ndarray) -> float:
    """The value that means white: 65535 for 16-bit; for 32-bit int/float the smallest usual range that fits."""
    if mode.startswith("I;16"):
        return 65535.0
    peak = float(values.max()) if values.size else 0.0
    ranges = (1.0, 255.0, 65535.0) if mode == "F" else (255.0, 65535.0)
    return next((r for r in ranges if peak <= r), max(peak, 1.0))


def load_image(path: str | Path, max_side: int | None = None) -> np.ndarray:
    """Decode `path` to an upright RGB uint8 array of shape (H, W, 3).

    With `max_side`, the image is shrunk (aspect kept) so its longer side is at most that many
    pixels; JPEGs are then decoded at a reduced scale, which is much faster for large photos.
    """
    path = _existing_file(path)
    with _load_errors(path):
        return _decode(path, max_side)


def probe_image(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header only: a fast check that `path` is an image we would decode."""
    path = _existing_file(path)
    with _load_errors(path), Image.open(path) as image:
        return image.size


def _existing_file(path: str | Path) -> Path:
    """`path` is a readable, non-empty regular file; otherwise an ImageLoadError says which it is not."""
    path = Path(path)
    if not path.is_file():
        if path.is_symlink() and not path.exists():
            raise ImageLoadError(path, "a symbolic link to nothing (its target is missing)")
        raise ImageLoadError(path, "not a regular file (a folder, a device or a pipe)" if path.exists()
                             else "no such file")
    if not os.access(path, os.R_OK):
        raise ImageLoadError(path, "the file cannot be read (permission denied)")
    if path.stat().st_size == 0:
        raise ImageLoadError(path, "file is empty (0 bytes)")
    return path


@contextlib.contextmanager
def _load_errors(path: Path) -> Iterator[None]:
    """Pillow's failures as one ImageLoadError naming the file; the bomb guard stays strict."""
    try:
        with warnings.catch_warnings():
            # Images above Pillow's pixel limit only warn; treat them as the bombs they may be.
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            yield
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise ImageLoadError(path, f"image is too large to decode safely ({e})") from e
    except UnidentifiedImageError as e:
        raise ImageLoadError(path, "not an image file Pillow can read") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(path, f"corrupt or truncated image ({e})") from e


def _decode(path: Path, max_side: int | None) -> np.ndarray:
    with Image.open(path) as image:
        if max_side is not None and image.format == "JPEG":
            image.draft("RGB", (max_side, max_side))  # decode at 1/2, 1/4 or 1/8 scale: much faster
        image.load()
        upright = to_rgb(ImageOps.exif_transpose(image))
        if max_side is not None and max(upright.size) > max_side:
            upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return np.asarray(upright, dtype=np.uint8).copy()


def content_hash(path: str | Path) -> str:
    """sha256 of the file's bytes: the identity of an image for caches and duplicate checks."""
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as e:
        raise ImageLoadError(path, f"the file cannot be read ({e.strerror or e})") from e
    return digest.hexdigest()
