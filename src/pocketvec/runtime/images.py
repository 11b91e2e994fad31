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

from pocketvec.errors import ConfigError, ImageLoadError

IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".webp", ".bmp", ".gif", ".tif", ".tiff"})


def is_image_path(path: Path) -> bool:
    return path.suffix.lower() in IMAGE_SUFFIXES and not path.name.startswith(".")


MAX_ASPECT = 20.0  # long side / short side; receipts and bookmarks stay well inside
MEMORY_BUDGET_ENV = "POCKETVEC_IMAGE_MEMORY_MIB"
DEFAULT_MEMORY_BUDGET_MIB = 512  # peak bytes one image may take while it becomes an RGB array
_HIGH_BIT_MODES = ("I;16", "I;16B", "I;16L", "I", "F")
_ALPHA_MODES = ("LA", "La", "PA", "P", "RGBA", "RGBa")  # P may carry transparency
_ROWS_VALUES = 1 << 20  # values converted at a time from a high bit depth


def to_rgb(image: Image.Image) -> Image.Image:
    """Any Pillow mode to RGB; transparency is composited on white."""
    image = _to_8bit(image)
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image).convert("RGB")
    return image if image.mode == "RGB" else image.convert("RGB")


def _to_8bit(image: Image.Image) -> Image.Image:
    """High bit depth greyscale to L, mapping the format's full range (not the image's own) to 8 bits;
    a few rows at a time, so no float copy of the whole image is made."""
    if image.mode not in _HIGH_BIT_MODES:
        return image
    values = np.asarray(image)
    scale = _full_scale(image.mode, values)
    out = np.empty(values.shape, np.uint8)
    step = max(1, _ROWS_VALUES // max(1, values.shape[1]))
    for top in range(0, values.shape[0], step):
        rows = values[top : top + step].astype(np.float64)
        out[top : top + step] = np.clip(rows / scale * 255.0 + 0.5, 0, 255)
    return Image.fromarray(out, "L")


def _full_scale(mode: str, values: np.ndarray) -> float:
    """The value that means white: 65535 for 16-bit; for 32-bit int/float the smallest usual range that fits."""
    if mode.startswith("I;16"):
        return 65535.0
    peak = float(values.max()) if values.size else 0.0
    ranges = (1.0, 255.0, 65535.0) if mode == "F" else (255.0, 65535.0)
    return next((r for r in ranges if peak <= r), max(peak, 1.0))


def memory_budget() -> int:
    """Bytes one image may take while it is decoded: POCKETVEC_IMAGE_MEMORY_MIB, else 512 MiB."""
    text = os.environ.get(MEMORY_BUDGET_ENV, "").strip()
    if not text:
        return DEFAULT_MEMORY_BUDGET_MIB << 20
    if not (text.isdigit() and len(text) <= 7 and 16 <= int(text) <= 1_048_576):
        raise ConfigError(f"{MEMORY_BUDGET_ENV} must be a whole number of MiB in [16, 1048576]. Got {text[:40]!r}.")
    return int(text) << 20


def check_aspect(width: int, height: int, source: str | Path) -> None:
    """Refuse an image with no pixels or an aspect ratio no photographed item has (ImageLoadError naming it)."""
    if width < 1 or height < 1:
        raise ImageLoadError(source, f"image has no pixels ({width} x {height})")
    aspect = max(width, height) / min(width, height)
    if aspect > MAX_ASPECT:
        raise ImageLoadError(source, f"aspect ratio {aspect:.0f}:1 ({width} x {height}) is beyond "
                                     f"{MAX_ASPECT:g}:1; crop the item out of the image")


def _pixel_bytes(mode: str) -> int:
    """Pillow's storage of one pixel: a byte for 1, L and P, two for 16-bit, four for the rest."""
    return 1 if mode in ("1", "L", "P") else 2 if mode.startswith("I;16") else 4


def _eight_bit_bytes(mode: str) -> int:
    """Bytes per pixel of mapping a high bit depth to L (`_to_8bit`): its values as an array, and L."""
    return _pixel_bytes(mode) + 1 if mode in _HIGH_BIT_MODES else 0


def _rgb_cost(mode: str, pixels: int) -> int:
    """Peak bytes of turning a decoded image of `mode` into the upright RGB array: the image and its
    upright copy, its 8-bit and RGB copies (RGBA and white first when it may have transparency),
    Pillow's bytes and numpy's array."""
    alpha = 8 if mode in _ALPHA_MODES else 0
    return pixels * (2 * _pixel_bytes(mode) + _eight_bit_bytes(mode) + 4 + alpha + 6)


def _reduce_mode(image: Image.Image) -> str:
    """The mode `image` is averaged in when it is reduced: its own, unless that holds bits, palette
    indices or more than 8 bits."""
    if image.mode in ("P", "PA"):
        return "RGBA" if image.mode == "PA" or "transparency" in image.info else "RGB"
    return {"1": "L", **dict.fromkeys(_HIGH_BIT_MODES, "L")}.get(image.mode, image.mode)


def _reduce_cost(image: Image.Image) -> int:
    """Peak bytes of the full-size image while it is reduced: decoded, in the mode it is averaged in
    (premultiplied when it has alpha)."""
    mode, target = image.mode, _reduce_mode(image)
    converted = _eight_bit_bytes(mode) or (_pixel_bytes(target) if target != mode else 0)
    premultiplied = 4 if target in ("LA", "RGBA") else 0
    return image.width * image.height * (_pixel_bytes(mode) + converted + premultiplied)


def reduction(image: Image.Image, source: str | Path) -> int:
    """The smallest factor (1: full size) that decodes `image` into an RGB array within the memory budget,
    from its header: a JPEG is decoded at 1/2, 1/4 or 1/8 scale, any other format in full and reduced
    in the mode it is averaged in. ImageLoadError (naming the file) for a shape or size that cannot fit."""
    width, height = image.size
    check_aspect(width, height, source)
    budget, jpeg = memory_budget(), _is_jpeg(image)

    def cost(factor: int) -> int:
        pixels = -(-width // factor) * -(-height // factor)
        if factor == 1 or jpeg:
            return _rgb_cost(image.mode, pixels)
        return _reduce_cost(image) + _rgb_cost(_reduce_mode(image), pixels)

    factors = (1, 2, 4, 8) if jpeg else range(1, 17)
    fitting = next((f for f in factors if cost(f) <= budget), None)
    if fitting is None:
        raise ImageLoadError(source, f"decoding {width} x {height} ({image.mode}) would take about "
                                     f"{cost(factors[-1]) >> 20:,} MiB even reduced, beyond the {budget >> 20:,} MiB "
                                     f"for one image ({MEMORY_BUDGET_ENV} sets it)")
    return fitting


def load_image(path: str | Path, max_side: int | None = None) -> np.ndarray:
    """Decode `path` to an upright RGB uint8 array of shape (H, W, 3).

    With `max_side`, the image is shrunk (aspect kept) so its longer side is at most that many
    pixels; JPEGs are then decoded at a reduced scale, which is much faster for large photos.
    An image whose decoding would take more memory than the budget (`memory_budget`) is decoded
    reduced (see `reduction`), or refused when even that would not fit.
    """
    path = _existing_file(path)
    with _load_errors(path):
        return _decode(path, max_side)


def probe_image(path: str | Path) -> tuple[int, int]:
    """(width, height) from the header only: a fast check that `path` is an image we would decode."""
    path = _existing_file(path)
    with _load_errors(path), Image.open(path) as image:
        reduction(image, path)
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
    except MemoryError as e:
        raise ImageLoadError(path, "not enough memory to decode the image") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(path, f"corrupt or truncated image ({e})") from e


def _decode(path: Path, max_side: int | None) -> np.ndarray:
    with Image.open(path) as opened:
        factor = reduction(opened, path)
        width, height = opened.size
        if _is_jpeg(opened) and (factor > 1 or max_side is not None):
            request = (width // factor, height // factor)
            if max_side is not None and min(width // max_side, height // max_side) >= factor:
                request = (max_side, max_side)
            opened.draft("RGB", request)  # decode at 1/2, 1/4 or 1/8 scale: faster, and within the budget
        opened.load()
        image = _reduced(opened, factor) if factor > 1 and opened.size == (width, height) else opened
        ImageOps.exif_transpose(image, in_place=True)
        upright = to_rgb(image)
        if upright is not opened:
            opened.close()  # the decoded pixels go now, before the array is made
        if max_side is not None and max(upright.size) > max_side:
            upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
        return np.array(upright, dtype=np.uint8)


def _is_jpeg(image: Image.Image) -> bool:
    return image.format in ("JPEG", "MPO")  # MPO: a camera's JPEG with extra frames


def _reduced(image: Image.Image, factor: int) -> Image.Image:
    """`image` made `factor` times smaller by averaging, in the mode it is averaged in; it keeps the
    EXIF orientation, which is applied afterwards to the small image."""
    exif, mode = image.getexif(), _reduce_mode(image)
    if image.mode in _HIGH_BIT_MODES:
        averaged = _to_8bit(image)
    else:
        averaged = image if mode == image.mode else image.convert(mode)
    if averaged is not image:
        image.close()
    reduced = averaged.reduce(factor)
    reduced.info = {**image.info, "exif": exif.tobytes()}
    return reduced


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
