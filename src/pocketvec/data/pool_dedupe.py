"""One picture, one class: duplicates across the sets of a pool (the same icon in two icon packs).

Two passes over the pool's (path, label) rows:

1. identical bytes (sha256): the later copy is dropped;
2. the same picture in other bytes (re-encoded, re-rendered at another size): the thumbnail check of
   `pseudoclasses.merge_identical_classes` (32x32 grey, 0.25 grey levels RMS, aspect within 5 %)
   finds them, and every copy takes the label of the first, so the copies are views of one class.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from pocketvec.data.pseudoclasses import PRESETS, expand_pseudo_classes, merge_identical_classes
from pocketvec.runtime.images import content_hash, load_image

Row = tuple[str, str]  # (image path, label)


@dataclass(frozen=True)
class DedupeResult:
    rows: list[Row]
    identical_bytes: int  # rows dropped: a byte-identical copy came earlier
    excluded: int  # rows dropped: the bytes of a benchmark item
    relabelled: int  # rows that took an earlier row's label (the same picture)


def dedupe_rows(rows: list[Row], hashes: dict[str, str] | None = None, excluded: set[str] | frozenset = frozenset(),
                thumbnail_side: int = 96, on_image: Callable[[], None] | None = None) -> DedupeResult:
    """`rows` without byte duplicates or excluded hashes, near-identical pictures sharing one label.

    `hashes` maps a path to its sha256 where a set manifest already knows it (others are hashed);
    images are decoded at `thumbnail_side` pixels, plenty for 32x32 thumbnails.
    """
    hashes = hashes or {}
    seen: set[str] = set()
    kept: list[Row] = []
    identical = dropped = 0
    for path, label in rows:
        digest = hashes.get(path) or content_hash(path)
        if digest in excluded:
            dropped += 1
        elif digest in seen:
            identical += 1
        else:
            seen.add(digest)
            kept.append((path, label))
    if not kept:
        return DedupeResult([], identical, dropped, 0)
    images: list[np.ndarray] = []
    for path, _ in kept:
        images.append(load_image(path, thumbnail_side))
        if on_image:
            on_image()
    variants = expand_pseudo_classes([label for _, label in kept], PRESETS["single"])
    merged = merge_identical_classes(variants, images, chunk=512)  # 512 x N float64 distances at a time
    first_label: dict[int, str] = {}
    out: list[Row] = []
    for variant in merged:
        path, label = kept[variant.item_index]
        canonical = first_label.setdefault(variant.class_id, label)
        out.append((path, canonical))
    relabelled = sum(new[1] != old[1] for new, old in zip(out, kept, strict=True))
    return DedupeResult(out, identical, dropped, relabelled)
