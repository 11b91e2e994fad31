"""Phone-photo simulation for training: an item image becomes a plausible phone photo of it.

The simulator itself is in the runtime (pocketvec.runtime.phone_sim.photo: the gallery views use it
there, without this package); here its backgrounds default to the cached wallpaper set
(`pocketvec data fetch wallpapers`) when present, else the embedded photos.

    augment = PhoneAugment(AugmentConfig(), output_size=224)
    photo = augment(item_rgb_uint8, np.random.default_rng(seed))
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from pocketvec.asset_dirs import backgrounds_dir
from pocketvec.data.sources import set_dir
from pocketvec.runtime.images import is_image_path
from pocketvec.runtime.phone_sim import photo
from pocketvec.runtime.phone_sim.config import AugmentConfig

__all__ = ["AugmentConfig", "PhoneAugment", "default_backgrounds_dir", "load_backgrounds"]


def default_backgrounds_dir() -> Path:
    """The cached wallpaper set (`pocketvec data fetch wallpapers`) if present, else the embedded photos."""
    cached = set_dir("wallpapers")
    if cached.is_dir() and any(is_image_path(p) for p in cached.rglob("*")):
        return cached
    return backgrounds_dir()


def load_backgrounds(folder: str | Path | None = None, max_side: int = 768, limit: int = 64) -> list[np.ndarray]:
    """Decode up to `limit` background photos from `folder` (sorted), each at most `max_side` px."""
    return photo.load_backgrounds(folder if folder is not None else default_backgrounds_dir(), max_side, limit)


class PhoneAugment(photo.PhoneAugment):
    """Callable `(item uint8 (H,W,3), rng) -> phone photo uint8 (S,S,3)`; picklable for data loaders.
    Without `backgrounds` it composites on the cached wallpapers when fetched."""

    @staticmethod
    def default_backgrounds() -> Path:
        return default_backgrounds_dir()
