"""Synthetic phone photos of the demo items (the data package's PhoneAugment), written to disk in
one folder per label so that `pocketvec calibrate` / `pocketvec eval` can read them again."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image

from pocketvec.runtime.enroll import labelled_images
from pocketvec.runtime.images import load_image
from pocketvec.runtime.progress import progress_bar

PHOTO_SIZE = 288


def write_phone_photos(items: Path, out: Path, per_item: int, seed: int, non_items: list[Path],
                       non_item_label: str) -> Path:
    """`per_item` photos of every item of `items` under out/<label>/, and one photo of each
    `non_items` image (a scene with no enrolled item) under out/<non_item_label>/."""
    from pocketvec.data.augment import PhoneAugment

    augment = PhoneAugment(output_size=PHOTO_SIZE)
    rng = np.random.default_rng(seed)
    entries = labelled_images(items)
    with progress_bar(f"phone photos -> {out.name}", len(entries) * per_item) as advance:
        for path, label in entries:
            image = load_image(path)
            (out / label).mkdir(parents=True, exist_ok=True)
            for i in range(per_item):
                Image.fromarray(augment(image, rng)).save(out / label / f"photo_{i}.png")
                advance(1)
    (out / non_item_label).mkdir(parents=True, exist_ok=True)
    for i, path in enumerate(non_items):
        Image.fromarray(random_view(load_image(path), rng)).save(out / non_item_label / f"scene_{i}.png")
    return out


def random_view(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A square crop (50-90 % of the short side) of a scene, at photo size."""
    h, w = image.shape[:2]
    side = int(min(h, w) * rng.uniform(0.5, 0.9))
    top, left = int(rng.integers(0, h - side + 1)), int(rng.integers(0, w - side + 1))
    crop = Image.fromarray(image[top : top + side, left : left + side])
    return np.asarray(crop.resize((PHOTO_SIZE, PHOTO_SIZE), Image.BILINEAR))
