"""Robust image loading shared by training and runtime (Pillow + numpy, no torch).

Every image becomes an RGB uint8 array, upright (EXIF orientation applied), alpha composited on
white. Anything that cannot be decoded raises ImageLoadError naming the file and the problem.
"""

from __future__ import annotations

import hashlib
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
        # High bit depth greyscale: scale the real value range down to 8 bits.
        values = np.asarray(image, dtype=np.float64)
        peak = 65535.0 if image.mode.startswith("I;16") else max(float(values.max()), 1.0)
        image = Image.fromarray(np.clip(values / peak * 255.0 + 0.5, 0, 255).astype(np.uint8), "L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("LA", "La", "PA", "RGBa"):
        image = image.convert("RGBA")
    if image.mode == "RGBA":
        white = Image.new("RGBA", image.size, (255, 255, 255, 255))
        return Image.alpha_composite(white, image).convert("RGB")
    return image.convert("RGB")


def load_image(path: str | Path, max_side: int | None = None) -> np.ndarray:
    """Decode `path` to an upright RGB uint8 array of shape (H, W, 3).

    With `max_side`, the image is shrunk (aspect kept) so its longer side is at most that many
    pixels; JPEGs are then decoded at a reduced scale, which is much faster for large photos.
    """
    path = Path(path)
    if not path.is_file():
        raise ImageLoadError(path, "no such file")
    if path.stat().st_size == 0:
        raise ImageLoadError(path, "file is empty (0 bytes)")
    try:
        with Image.open(path) as image:
            if max_side is not None and image.format == "JPEG":
                image.draft("RGB", (max_side, max_side))
            image.load()
            upright = to_rgb(ImageOps.exif_transpose(image))
            if max_side is not None and max(upright.size) > max_side:
                upright.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
            return np.asarray(upright, dtype=np.uint8).copy()
    except Image.DecompressionBombError as e:
        raise ImageLoadError(path, f"image is too large to decode safely ({e})") from e
    except UnidentifiedImageError as e:
        raise ImageLoadError(path, "not an image file Pillow can read") from e
    except (OSError, SyntaxError, ValueError) as e:
        raise ImageLoadError(path, f"corrupt or truncated image ({e})") from e


def content_hash(path: str | Path) -> str:
    """sha256 of the file's bytes: the identity of an image for caches and duplicate checks."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()
