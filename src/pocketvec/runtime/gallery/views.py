"""Gallery views: an item's gallery row is its clean image's embedding blended with the mean embedding of
simulated phone photos of it, so the row sits where photos of the item land, not where the clean scan does.

    row = normalise(clean_weight x clean + (1 - clean_weight) x mean(views))

The photos come from pocketvec's training photo simulator (pocketvec.runtime.phone_sim.photo.PhoneAugment) on the
embedded backgrounds, seeded by the image's content: the same image gives the same row on every machine.
They are embedded as query photos are, with the model's photos' crop. They are square by default; `aspect`
frames them as phone photos (4/3: portrait 3:4, the central strip of a larger square photo), which on the
validation simulator's phone-aspect photos measured no better (docs/lab/enroll-dev-protocol.md). The local
maps (the re-rank's) stay the clean image's. Only gallery rows are blended; photos are matched as they come.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pocketvec.checks import check_number
from pocketvec.runtime.images import load_image

if TYPE_CHECKING:
    from pocketvec.runtime.phone_sim.photo import PhoneAugment

MAX_VIEWS = 64


@dataclass(frozen=True)
class GalleryViews:
    """How gallery rows are made: `count` simulated photos per item (0: the clean embedding alone)."""

    count: int = 8
    clean_weight: float = 0.5
    aspect: float = 1.0  # the photos' height / width: 1 square, 4/3 a portrait phone photo, 3/4 landscape

    def __post_init__(self) -> None:
        check_number("gallery views", self.count, 0, MAX_VIEWS, integer=True)
        check_number("gallery views clean_weight", self.clean_weight, 0.0, 1.0)
        check_number("gallery views aspect", self.aspect, 0.5, 2.0)


NO_VIEWS = GalleryViews(count=0)


class _Simulators(threading.local):
    """One simulator per thread and size: its albumentations transforms take each photo's random state, so
    threads photographing items at once must not share them (each makes the same pixels from a seed)."""

    def __init__(self) -> None:
        self.by_size: dict[int, PhoneAugment] = {}


_SIMULATORS = _Simulators()


def _simulator(size: int) -> PhoneAugment:
    from pocketvec.asset_dirs import backgrounds_dir
    from pocketvec.runtime.phone_sim.photo import PhoneAugment

    if size not in _SIMULATORS.by_size:
        _SIMULATORS.by_size[size] = PhoneAugment(output_size=size, backgrounds=backgrounds_dir())
    return _SIMULATORS.by_size[size]


def view_photos(image: np.ndarray, identity: str, views: GalleryViews, size: int) -> list[np.ndarray]:
    """`views.count` simulated phone photos of `image` (RGB, short side `size`, height / width `views.aspect`),
    seeded by `identity` (a hex content hash)."""
    rng = np.random.default_rng(int(identity[:16], 16))
    side = round(size * max(views.aspect, 1 / views.aspect))
    return [phone_frame(_simulator(side)(image, rng), views.aspect) for _ in range(views.count)]


def phone_frame(photo: np.ndarray, aspect: float) -> np.ndarray:
    """The central strip of a square photo whose height / width is `aspect`."""
    side = photo.shape[0]
    if aspect >= 1:
        width = round(side / aspect)
        return photo[:, (side - width) // 2 : (side - width) // 2 + width]
    height = round(side * aspect)
    return photo[(side - height) // 2 : (side - height) // 2 + height]


def blend_views(clean: np.ndarray, views: np.ndarray, clean_weight: float) -> np.ndarray:
    """clean (N, D) and views (N, K, D) embeddings -> (N, D) L2-normalised gallery rows."""
    rows = clean_weight * clean + (1.0 - clean_weight) * views.mean(axis=1)
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def with_views(clean: np.ndarray, images: Sequence[np.ndarray | Path], identities: Sequence[str],
               views: GalleryViews, size: int, embed: Callable[[list[np.ndarray]], np.ndarray],
               advance: Callable[[int], None] = lambda n: None) -> np.ndarray:
    """The gallery rows of `images` (arrays or paths, in order, with their content hashes), whose clean
    embeddings are `clean`: `embed` turns a list of photos into (N, D) embeddings with the same model, cropped
    as it crops query photos. `advance(n)` reports items done."""
    if views.count == 0 or len(images) == 0:
        return clean
    embedded = []
    for image, identity in zip(images, identities, strict=True):
        array = load_image(image) if isinstance(image, Path) else image
        embedded.append(embed(view_photos(array, identity, views, size)))
        advance(1)
    return blend_views(clean, np.stack(embedded), views.clean_weight)
