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
