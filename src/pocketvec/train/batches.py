"""Training batches: pseudo-class variants of the items, turned into simulated phone photos.

Every batch is a pure function of (seed, step): which pseudo-classes, which views, and the augmentation
random numbers. That makes a resumed run draw exactly the batches the uninterrupted run would have, and
lets data-loader workers build batches in any order.

Two augmentation paths: `cpu` makes finished photos here (albumentations/OpenCV, PhoneAugment);
`device` prepares scenes here (crop, item canvas, every random number) and leaves the pixel effects to
the training device, batched (pocketvec.data.augment_torch; the loop calls `finish_pixels`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import numpy as np
import torch
from PIL import Image

from pocketvec.data.augment import AugmentConfig, PhoneAugment
from pocketvec.data.augment_torch import SceneBatch, TorchPhotoSim, stack_scenes
from pocketvec.data.items import ItemDataset
from pocketvec.data.pseudoclasses import (
    PseudoVariant,
    expand_pseudo_classes,
    merge_identical_classes,
    policy_from_name,
    render_variant,
)
from pocketvec.errors import DatasetError
from pocketvec.runtime.images import content_hash, load_image
from pocketvec.runtime.phone_sim.scene_params import clean_scene
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess


def fit_within(image: np.ndarray, max_side: int) -> np.ndarray:
    h, w = image.shape[:2]
    if max(h, w) <= max_side:
        return image
    scale = max_side / max(h, w)
    size = (max(1, round(w * scale)), max(1, round(h * scale)))
    return np.asarray(Image.fromarray(image).resize(size, Image.Resampling.LANCZOS))


@dataclass
class Batch:
    pixels: torch.Tensor  # (B, 3, S, S) float32 0-255: augmented phone photos (empty on the device path)
    labels: torch.Tensor  # (B,) pseudo-class ids
    clean: torch.Tensor  # (B, 3, T, T) float32 0-255: the clean variant, for the teacher
    teacher_keys: list[tuple[str, str]]  # (item content hash, view name) per row
    teacher_embedding: torch.Tensor | None = None  # (B, D) cached teacher embeddings of `pixels`
    scene: SceneBatch | None = None  # the device path's prepared scenes
    class_views: torch.Tensor | None = None  # (K, 3, S, S) each batch class's clean rendering, as the gallery
    class_slot: torch.Tensor | None = None  # (B,) each row's index into class_views
    candidate_slot: torch.Tensor | None = None  # (B, k) each row's re-rank candidates, indices into class_views
    teacher_local: torch.Tensor | None = None  # (B, k) the teacher's local scores of those candidates

    def finish_pixels(self, device: torch.device, sim: TorchPhotoSim | None) -> torch.Tensor:
        """The photos on `device`: made here already (cpu path), or simulated there now (device path)."""
        if self.scene is None:
            return self.pixels.to(device, non_blocking=True)
        if sim is None:
            raise DatasetError("this batch holds prepared scenes: the device path needs a TorchPhotoSim")
        return sim(self.scene, device)


def kept_side(input_size: int) -> int:
    """The side a BatchMaker for `input_size` keeps the items fit within (crops and zooms keep detail)."""
    return 2 * input_size


class BatchMaker:
    """Builds the batch of a given step. Picklable, so DataLoader workers can run it."""

    def __init__(self, items: ItemDataset, policy: str, input_size: int, batch_classes: int,
                 views_per_class: int, seed: int, augment: dict | None = None, backgrounds: str = "",
                 teacher_size: int = 0, merge_identical: bool = True, clean_spec: PreprocessSpec | None = None,
                 clean_fraction: float = 0.0, device_augment: bool = False, class_views: bool = False,
                 source_side: int = 0) -> None:
        """`source_side`: the items are kept fit within it (0: `kept_side(input_size)`). The pseudo-class ids
        depend on it (identical renderings are merged from these images), so a teacher-photo cache's
        labels are matched by giving the side it was built with."""
        if len(items) == 0:
            raise DatasetError(f"{items.root}: no item images to train on")
        self.images = [fit_within(load_image(e.path), source_side or kept_side(input_size)) for e in items]
        self.variants: tuple[PseudoVariant, ...] = expand_pseudo_classes([e.label for e in items],
                                                                         policy_from_name(policy))
        if merge_identical:
            self.variants = merge_identical_classes(self.variants, self.images)
        self.num_classes = len({v.class_id for v in self.variants})
        if self.num_classes < 2:
            raise DatasetError(f"{items.root}: training needs at least 2 pseudo-classes. Got {self.num_classes}.")
        self.hashes = [content_hash(e.path) for e in items]
        self.augment = PhoneAugment(AugmentConfig.from_dict(augment or {}), input_size, backgrounds or None)
        self.device_augment = device_augment
        self.batch_classes = min(batch_classes, self.num_classes)
        self.views_per_class = views_per_class
        self.seed = seed
        self.teacher_spec = PreprocessSpec(input_size=teacher_size, crop_mode="scale_fit") if teacher_size else None
        # some views are the clean item preprocessed as the gallery is: its embedding joins its class
        self.clean_spec = clean_spec or PreprocessSpec(input_size=input_size)
        self.clean_fraction = clean_fraction
        self.class_views = class_views  # each batch also carries its classes' clean renderings (LocalMatchLoss)
        self._by_class: dict[int, list[int]] = {}
        for index, variant in enumerate(self.variants):
            self._by_class.setdefault(variant.class_id, []).append(index)
        self.neighbours: np.ndarray | None = None  # (classes, n): each class's look-alikes, nearest first
        self.group_size = 1
        self._orders: dict[int, np.ndarray] = {}

    def group_lookalikes(self, class_embeddings: np.ndarray, group_size: int, candidates: int = 16) -> None:
        """Build each epoch's batches from groups of `group_size` look-alike classes (nearest neighbours of
        `class_embeddings`, (classes, D) L2-normalised, e.g. the start model's embeddings of the clean
        renderings), so a batch's other classes are the hard negatives."""
        similarity = class_embeddings @ class_embeddings.T
        np.fill_diagonal(similarity, -np.inf)
        n = min(candidates, self.num_classes - 1)
        self.neighbours = np.argsort(-similarity, axis=1, kind="stable")[:, :n]
        self.group_size = group_size
        self._orders.clear()

    def clean_view(self, class_id: int, spec: PreprocessSpec | None = None) -> np.ndarray:
        """The clean rendering of a pseudo-class (its first variant), preprocessed as the gallery is (`spec`,
        default the maker's clean spec): (S, S, 3) float32 0-255."""
        first = self.variants[self._by_class[int(class_id)][0]]
        image = render_variant(self.images[first.item_index], first.rotation, first.flip, first.region)
        return preprocess(image, spec or self.clean_spec)

    def clean_views(self, classes: Iterable[int], spec: PreprocessSpec | None = None) -> torch.Tensor:
        """(K, 3, S, S) float32 0-255: the clean renderings of `classes`, as clean_view makes each."""
        return torch.from_numpy(np.stack([self.clean_view(c, spec) for c in classes])).permute(0, 3, 1, 2).float()

    def steps_per_epoch(self) -> int:
        return max(1, self.num_classes // self.batch_classes)

    def _epoch_order(self, epoch: int) -> np.ndarray:
        """Every pseudo-class once, in a seeded order; with look-alike groups, each class in the order is
        followed by its nearest classes not yet placed."""
        order = np.random.default_rng([self.seed, epoch, 0]).permutation(self.num_classes)
        if self.neighbours is None or self.group_size < 2:
            return order
        if epoch not in self._orders:
            placed = np.zeros(self.num_classes, dtype=bool)
            grouped: list[int] = []
            for anchor in order:
                if placed[anchor]:
                    continue
                free = [int(c) for c in self.neighbours[anchor] if not placed[c]][: self.group_size - 1]
                grouped += [int(anchor), *free]
                placed[[anchor, *free]] = True
            self._orders = {epoch: np.asarray(grouped)}
        return self._orders[epoch]

    def _classes_of(self, step: int) -> np.ndarray:
        """Each epoch visits every pseudo-class once."""
        epoch, offset = divmod(step, self.steps_per_epoch())
        return self._epoch_order(epoch)[offset * self.batch_classes : (offset + 1) * self.batch_classes]

    def __call__(self, step: int) -> Batch:
        photos, labels, clean, keys, class_views, slots = [], [], [], [], [], []
        for slot, class_id in enumerate(self._classes_of(step)):
            if self.class_views:
                class_views.append(self.clean_view(class_id))
            for view in range(self.views_per_class):
                rng = np.random.default_rng([self.seed, step, slot, view, 1])
                members = self._by_class[int(class_id)]  # variants sharing a class: augmentations of it
                variant = self.variants[members[int(rng.integers(len(members)))]]
                image = render_variant(self.images[variant.item_index], variant.rotation, variant.flip,
                                       variant.region)
                clean_view = self.clean_fraction > 0 and rng.random() < self.clean_fraction
                if clean_view:
                    clean_pixels = preprocess(image, self.clean_spec)
                    photos.append(clean_scene(clean_pixels) if self.device_augment else clean_pixels)
                else:
                    photos.append(self.augment.scene(image, rng) if self.device_augment else self.augment(image, rng))
                labels.append(variant.class_id)
                slots.append(slot)
                if self.teacher_spec is not None:
                    clean.append(preprocess(image, self.teacher_spec))
                keys.append((self.hashes[variant.item_index],
                             f"r{variant.rotation}-f{int(variant.flip)}-{variant.region}-fit"))
        to_tensor = lambda images: torch.from_numpy(np.stack(images)).permute(0, 3, 1, 2).float()  # noqa: E731
        labels_t, clean_t = torch.tensor(labels), to_tensor(clean) if clean else torch.empty(0)
        views = {"class_views": to_tensor(class_views), "class_slot": torch.tensor(slots)} if class_views else {}
        if self.device_augment:
            return Batch(torch.empty(0), labels_t, clean_t, keys, scene=stack_scenes(photos), **views)
        return Batch(to_tensor(photos), labels_t, clean_t, keys, **views)
