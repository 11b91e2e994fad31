"""Bounds on an image from the work its preprocessing will do, not only from its decoded size.

A centre crop scales the short side to the input size, so a 1 x 3,000 strip would become a
224 x 672,000 image on the way: the pixel count after that scale is what is bounded here, and an
aspect ratio no photographed item has is refused outright, naming the file.
"""

from __future__ import annotations

from pathlib import Path

from pocketvec.errors import ImageLoadError
from pocketvec.runtime.images import MAX_ASPECT, check_aspect
from pocketvec.runtime.preprocess import PreprocessSpec

__all__ = ["MAX_ASPECT", "MAX_SCALED_PIXELS", "check_bounds", "scaled_pixels"]
MAX_SCALED_PIXELS = 16 * 1024 * 1024  # pixels of the scaled image before its crop


def scaled_pixels(width: int, height: int, spec: PreprocessSpec) -> float:
    """An upper estimate of the pixels preprocessing creates: the centre crop scales the short side
    to the input size (the long side follows); scale_fit and scale_fill make at most size x size."""
    size = spec.input_size
    if spec.crop_mode == "center_crop":
        return size * size * max(width, height) / min(width, height)
    return float(size * size)


def check_bounds(width: int, height: int, spec: PreprocessSpec, source: str | Path) -> None:
    """Refuse an image whose shape or scaled size is beyond the bounds (ImageLoadError naming it)."""
    check_aspect(width, height, source)
    pixels = scaled_pixels(width, height, spec)
    if pixels > MAX_SCALED_PIXELS:
        raise ImageLoadError(source, f"image would be scaled to {pixels:,.0f} pixels for a {spec.crop_mode} at "
                                     f"{spec.input_size} px (at most {MAX_SCALED_PIXELS:,}); crop it closer")
