"""Training batches: clean views, the gallery's own picture of an item, mixed into the photos."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from pocketvec.data.items import load_items
from pocketvec.data.pseudoclasses import render_variant
from pocketvec.errors import ConfigError
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess
from pocketvec.train.batches import BatchMaker
from pocketvec.train.config import TrainConfig

SPEC = PreprocessSpec(input_size=64, crop_mode="scale_fit")


def _maker(folder: Path, fraction: float) -> BatchMaker:
    return BatchMaker(load_items(folder), "single", 64, 3, 2, seed=0, clean_spec=SPEC, clean_fraction=fraction)


def _clean_pixels(maker: BatchMaker, label: int) -> np.ndarray:
    variant = next(v for v in maker.variants if v.class_id == label)
    image = render_variant(maker.images[variant.item_index], variant.rotation, variant.flip, variant.region)
    return preprocess(image, SPEC).transpose(2, 0, 1).astype(np.float32)


def test_all_clean_views_are_the_gallery_picture(few_items: Path) -> None:
    maker = _maker(few_items, 1.0)
    batch = maker(0)
    for pixels, label in zip(batch.pixels.numpy(), batch.labels.tolist(), strict=True):
        np.testing.assert_array_equal(pixels, _clean_pixels(maker, label))


def test_no_clean_views_by_default_and_a_share_of_them_when_asked(few_items: Path) -> None:
    def clean_count(maker: BatchMaker) -> int:
        batches = [maker(step) for step in range(4)]
        return sum(int(np.array_equal(p, _clean_pixels(maker, label)))
                   for b in batches for p, label in zip(b.pixels.numpy(), b.labels.tolist(), strict=True))

    assert clean_count(_maker(few_items, 0.0)) == 0
    assert 0 < clean_count(_maker(few_items, 0.5)) < 4 * 6


def test_clean_view_fraction_is_checked() -> None:
    with pytest.raises(ConfigError, match="clean_view_fraction"):
        TrainConfig(clean_view_fraction=1.5)
