"""Backgrounds for the benchmark photo simulator: the cached GNOME backgrounds, or synthetic clutter.

Its own code path (numpy + OpenCV) and its own photos, independent of the training augmentation (which
composites onto the Plasma wallpapers), so that benchmark queries never share the training pipeline's
habits or backgrounds.
"""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

import cv2
import numpy as np

from pocketvec.data.sources import cache_status
from pocketvec.runtime.images import is_image_path, load_image

BENCH_BACKGROUNDS = "bench-backgrounds"


def wallpaper_paths(root: Path | None = None) -> list[Path]:
    """The cached `bench-backgrounds` set (sorted), or [] when it was never fetched."""
    status = cache_status(BENCH_BACKGROUNDS, root)
    if not status.items:
        return []
    return sorted(p for p in status.path.iterdir() if is_image_path(p))


@lru_cache(maxsize=64)
def _load_small(path: Path, long_side: int = 800) -> np.ndarray:
    image = load_image(path)
    scale = long_side / max(image.shape[:2])
    if scale < 1:
        image = cv2.resize(image, (round(image.shape[1] * scale), round(image.shape[0] * scale)),
                           interpolation=cv2.INTER_AREA)
    return image


def crop_background(path: Path, size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A random crop of a wallpaper, zoomed 1-2.5x, resized to size (w, h)."""
    image = _load_small(path)
    width, height = size
    zoom = rng.uniform(1.0, 2.5)
    h, w = image.shape[:2]
    crop_h = max(8, min(h, round(h / zoom)))
    crop_w = max(8, min(w, round(crop_h * width / height)))
    crop_h = min(h, round(crop_w * height / width))
    y, x = rng.integers(0, h - crop_h + 1), rng.integers(0, w - crop_w + 1)
    crop = image[y : y + crop_h, x : x + crop_w]
    if rng.random() < 0.5:
        crop = crop[:, ::-1]
    return cv2.resize(np.ascontiguousarray(crop), size, interpolation=cv2.INTER_AREA)


def synthetic_clutter(size: tuple[int, int], rng: np.random.Generator) -> np.ndarray:
    """A table-top-like scene: a colour gradient, then random boxes, discs, lines and text-like strokes."""
    width, height = size
    base = rng.uniform(40, 220, size=(2, 3))
    ramp = np.linspace(0, 1, width, dtype=np.float32)[None, :, None]
    canvas = (base[0] * (1 - ramp) + base[1] * ramp) * np.ones((height, 1, 1), np.float32)
    canvas = np.ascontiguousarray(canvas.astype(np.uint8))
    for _ in range(int(rng.integers(6, 18))):
        color = tuple(int(c) for c in rng.integers(0, 256, 3))
        kind = rng.integers(0, 4)
        x, y = int(rng.integers(0, width)), int(rng.integers(0, height))
        if kind == 0:
            x2, y2 = x + int(rng.integers(20, width // 2)), y + int(rng.integers(20, height // 2))
            cv2.rectangle(canvas, (x, y), (x2, y2), color, -1)
        elif kind == 1:
            cv2.circle(canvas, (x, y), int(rng.integers(10, min(width, height) // 4)), color, -1)
        elif kind == 2:
            end = (int(rng.integers(0, width)), int(rng.integers(0, height)))
            cv2.line(canvas, (x, y), end, color, int(rng.integers(1, 6)))
        else:
            for row in range(int(rng.integers(2, 6))):  # a few "lines of text"
                cv2.putText(canvas, "".join(chr(int(c)) for c in rng.integers(65, 91, 8)),
                            (x, y + 18 * row), cv2.FONT_HERSHEY_SIMPLEX, 0.5, color, 1, cv2.LINE_AA)
    return cv2.GaussianBlur(canvas, (0, 0), rng.uniform(0.5, 2.0))


def background(size: tuple[int, int], rng: np.random.Generator, wallpapers: list[Path]) -> np.ndarray:
    """A background of `size` (w, h): a wallpaper crop when wallpapers exist (80%), else clutter."""
    if wallpapers and rng.random() < 0.8:
        return crop_background(wallpapers[int(rng.integers(0, len(wallpapers)))], size, rng)
    return synthetic_clutter(size, rng)
