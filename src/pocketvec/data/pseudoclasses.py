"""Pseudo-classes: each item image expands into up to 24 training classes.

A variant is horizontal flip -> rotation (0/90/180/270, counter-clockwise) -> region (full, top
half, bottom half of the rotated image), applied in that order. A policy says which variants become
distinct classes and which are only augmentations of the same class:

- rotations are given as groups: rotations in one group share a class (``((0, 180), (90, 270))``
  says an item looks the same upside down); rotations in no group are not used;
- ``flip`` is ``distinct`` (a mirror image is another class), ``augment`` (same class) or ``off``;
- every listed region is its own class.

Because the region is cut after rotating, an item that is symmetric under 180° gives identical
pixels for rotations 0 and 180 in every region, which is why ``symmetric`` groups them.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

import numpy as np

from pocketvec.errors import ConfigError

ROTATIONS: tuple[int, ...] = (0, 90, 180, 270)
FLIP_MODES: tuple[str, ...] = ("distinct", "augment", "off")
REGIONS: tuple[str, ...] = ("full", "top", "bottom")


@dataclass(frozen=True)
class PseudoClassPolicy:
    """Which variants of an item image are distinct classes (validated on construction)."""

    rotation_groups: tuple[tuple[int, ...], ...] = ((0,), (90,), (180,), (270,))
    flip: str = "distinct"
    regions: tuple[str, ...] = REGIONS

    def __post_init__(self) -> None:
        groups = tuple(tuple(int(r) for r in group) for group in self.rotation_groups)
        used = [r for group in groups for r in group]
        if not groups or any(not group for group in groups):
            raise ConfigError(f"rotation_groups needs at least one non-empty group. Got {self.rotation_groups}.")
        if any(r not in ROTATIONS for r in used) or len(set(used)) != len(used):
            raise ConfigError(
                f"rotation_groups must use each of {ROTATIONS} at most once. Got {self.rotation_groups}."
            )
        if self.flip not in FLIP_MODES:
            raise ConfigError(f"flip must be one of {', '.join(FLIP_MODES)}. Got {self.flip!r}.")
        regions = tuple(self.regions)
        if not regions or any(r not in REGIONS for r in regions) or len(set(regions)) != len(regions):
            raise ConfigError(f"regions must be distinct names from {', '.join(REGIONS)}. Got {self.regions}.")
        object.__setattr__(self, "rotation_groups", groups)
        object.__setattr__(self, "regions", regions)

    @property
    def classes_per_item(self) -> int:
        return len(self.rotation_groups) * (2 if self.flip == "distinct" else 1) * len(self.regions)

    @classmethod
    def from_dict(cls, values: Mapping[str, Any]) -> PseudoClassPolicy:
        """Build from JSON-like values; unknown keys are rejected, lists become tuples."""
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ConfigError(f"unknown pseudo-class policy keys {unknown}; valid keys: {', '.join(sorted(known))}")
        converted = dict(values)
        if "rotation_groups" in converted:
            converted["rotation_groups"] = tuple(tuple(g) for g in converted["rotation_groups"])
        if "regions" in converted:
            converted["regions"] = tuple(converted["regions"])
        return cls(**converted)


PRESETS: dict[str, PseudoClassPolicy] = {
    # Pages, labels, covers: every rotation, mirror and half is a different-looking item (24).
    "documents": PseudoClassPolicy(),
    # Playing cards, symmetric logos: upside down is the same item (12).
    "symmetric": PseudoClassPolicy(rotation_groups=((0, 180), (90, 270))),
    # Items only seen upright, such as flags whose look-alikes are mirror images: no rotation or flip (3).
    "upright": PseudoClassPolicy(rotation_groups=((0,),), flip="off"),
    # One class per item, no pseudo-classes (1).
    "single": PseudoClassPolicy(rotation_groups=((0,),), flip="off", regions=("full",)),
}


def policy_from_name(name: str) -> PseudoClassPolicy:
    if name not in PRESETS:
        raise ConfigError(f"unknown pseudo-class policy {name!r}; valid presets: {', '.join(PRESETS)}")
    return PRESETS[name]


@dataclass(frozen=True)
class PseudoVariant:
    """One rendering of one item image and the pseudo-class it trains."""

    item_index: int
    rotation: int
    flip: bool
    region: str
    class_id: int


def expand_pseudo_classes(labels: Iterable[str], policy: PseudoClassPolicy) -> tuple[PseudoVariant, ...]:
    """All variants of every item image (given by its label, in dataset order) with class ids.

    Images with the same label share their classes. Class ids are contiguous from 0, numbered by
    first appearance. `labels` may be an ItemDataset's ``[e.label for e in dataset]``.
    """
    flips = {"distinct": (False, True), "augment": (False, True), "off": (False,)}[policy.flip]
    class_ids: dict[tuple[str, int, bool, str], int] = {}
    variants = []
    for item_index, label in enumerate(labels):
        for group_index, group in enumerate(policy.rotation_groups):
            for rotation in group:
                for flip in flips:
                    for region in policy.regions:
                        key = (label, group_index, flip and policy.flip == "distinct", region)
                        class_id = class_ids.setdefault(key, len(class_ids))
                        variants.append(PseudoVariant(item_index, rotation, flip, region, class_id))
    return tuple(variants)


def num_classes(variants: Iterable[PseudoVariant]) -> int:
    return len({v.class_id for v in variants})


def render_variant(image: np.ndarray, rotation: int, flip: bool, region: str) -> np.ndarray:
    """The pixels of one variant: flip, rotate counter-clockwise, then cut the region (uint8 in/out)."""
    if rotation not in ROTATIONS:
        raise ConfigError(f"rotation must be one of {ROTATIONS}. Got {rotation}.")
    if region not in REGIONS:
        raise ConfigError(f"region must be one of {', '.join(REGIONS)}. Got {region!r}.")
    out = image[:, ::-1] if flip else image
    out = np.rot90(out, k=rotation // 90)
    half = (out.shape[0] + 1) // 2
    if region == "top":
        out = out[:half]
    elif region == "bottom":
        out = out[out.shape[0] - half :]
    return np.ascontiguousarray(out)


def _thumbnail(image: np.ndarray, side: int) -> np.ndarray:
    import cv2

    grey = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY)
    return cv2.resize(grey, (side, side), interpolation=cv2.INTER_AREA).astype(np.float32).ravel()


def _bucket_keys(thumbs: np.ndarray, aspect: np.ndarray, tolerance: float, aspect_tolerance: float) -> np.ndarray:
    """Coarse integer keys (top-half mean, bottom-half mean, log aspect) such that two renderings close
    enough to merge always land in the same or adjacent buckets along every key.

    A half holds n/2 of the n thumbnail pixels, so two thumbnails within `tolerance` RMS have half means
    within tolerance * sqrt(2) (Cauchy-Schwarz): buckets 1.5 * tolerance wide are wide enough."""
    half = thumbs.shape[1] // 2
    width = 1.5 * max(tolerance, 1e-6)
    return np.stack([np.floor(thumbs[:, :half].mean(1) / width), np.floor(thumbs[:, half:].mean(1) / width),
                     np.floor(aspect / aspect_tolerance)], 1).astype(np.int64)


def _neighbour_bucket_pairs(keys: np.ndarray) -> tuple[np.ndarray, list[np.ndarray]]:
    """Every (bucket, neighbouring bucket) pair once (a bucket with itself included), and each bucket's
    members. Neighbours differ by at most one along every key."""
    buckets, inverse = np.unique(keys, axis=0, return_inverse=True)
    inverse = inverse.ravel()
    order = np.argsort(inverse, kind="stable")
    members = np.split(order, np.cumsum(np.bincount(inverse, minlength=len(buckets)))[:-1])
    low = buckets.min(0) - 1
    radix = buckets.max(0) - low + 2

    def code(k: np.ndarray) -> np.ndarray:
        k = k - low
        return (k[:, 0] * radix[1] + k[:, 1]) * radix[2] + k[:, 2]

    codes = code(buckets)  # sorted, as np.unique sorts the keys lexicographically
    pairs = [np.stack([np.flatnonzero([len(m) > 1 for m in members])] * 2, 1)]
    offsets = [o for o in np.ndindex(3, 3, 3) if tuple(np.subtract(o, 1)) > (0, 0, 0)]  # half of them: each pair once
    for offset in offsets:
        target = code(buckets + np.subtract(offset, 1))
        position = np.minimum(np.searchsorted(codes, target), len(codes) - 1)
        found = np.flatnonzero(codes[position] == target)
        pairs.append(np.stack([found, position[found]], 1))
    return np.concatenate(pairs), members


def merge_identical_classes(variants: tuple[PseudoVariant, ...], images: list[np.ndarray],
                            tolerance: float = 0.25, side: int = 32, chunk: int = 2048) -> tuple[PseudoVariant, ...]:
    """One class for variants whose renderings are the same picture, whatever item they come from.

    Look-alike items share whole regions: the top half of a card and of its edition with a serial
    number printed at the bottom are identical pixels. As two classes they would be a contradiction
    the loss can only answer by giving up on discrimination. Two renderings are the same picture when
    their 32x32 grey thumbnails differ by less than `tolerance` grey levels (RMS) and their aspect
    ratios by less than 5%; distinct items differ by more than 0.5 even when only a serial number
    tells them apart. Class ids stay contiguous, numbered by first appearance.

    Scales to hundreds of thousands of variants: only thumbnails are kept (not the renderings), and
    only renderings in the same or neighbouring buckets of a coarse key are compared (`_bucket_keys`:
    a pair that could merge is never in buckets further apart), so the work grows with the number of
    near pairs instead of n².
    """
    # float64: in float32, |a|^2 + |b|^2 - 2ab of two identical bright thumbnails is ~80, above the
    # tolerance (0.25^2 * 1024 = 64), so identical pages were never merged
    thumbs = np.empty((len(variants), side * side), dtype=np.float64)
    aspect = np.empty(len(variants), dtype=np.float64)
    for index, v in enumerate(variants):
        rendered = render_variant(images[v.item_index], v.rotation, v.flip, v.region)
        thumbs[index] = _thumbnail(rendered, side)
        aspect[index] = np.log(rendered.shape[1] / rendered.shape[0])
    norms = (thumbs**2).sum(1)
    parent = list(range(max(v.class_id for v in variants) + 1))

    def root(c: int) -> int:
        while parent[c] != c:
            parent[c] = parent[parent[c]]
            c = parent[c]
        return c

    pairs, members = _neighbour_bucket_pairs(_bucket_keys(thumbs, aspect, tolerance, 0.05))
    for first, second in pairs:
        others = members[second]
        for start in range(0, len(members[first]), chunk):
            rows = members[first][start : start + chunk]
            squared = norms[rows, None] + norms[None, others] - 2 * thumbs[rows] @ thumbs[others].T
            close = (squared < tolerance**2 * thumbs.shape[1]) & \
                (np.abs(aspect[rows, None] - aspect[None, others]) < 0.05)
            for i, j in zip(*np.nonzero(close), strict=True):
                a, b = root(variants[rows[i]].class_id), root(variants[others[j]].class_id)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    renumbered: dict[int, int] = {}
    return tuple(PseudoVariant(v.item_index, v.rotation, v.flip, v.region,
                               renumbered.setdefault(root(v.class_id), len(renumbered))) for v in variants)
