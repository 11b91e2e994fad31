"""The validation photo simulator: deterministic, phone aspect, the item in view, a checked config, torch-free."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from pocketvec.data.assets import demo_items_dir
from pocketvec.data.validation_sim import (
    VALIDATION_SEED,
    ValidationSimConfig,
    validation_photo,
    validation_photos,
    validation_rng,
)
from pocketvec.errors import ConfigError
from pocketvec.runtime.images import load_image

SMALL = ValidationSimConfig(photo_long_side=192)  # small photos keep the tests fast; the code path is the same


@pytest.fixture(scope="module")
def item() -> np.ndarray:
    return load_image(demo_items_dir() / "flag_mali.png")


def test_same_seed_same_pixels_and_photos_differ(item):
    first = validation_photos(item, "mali", 3, cfg=SMALL)
    again = validation_photos(item, "mali", 3, cfg=SMALL)
    assert all(np.array_equal(a, b) for a, b in zip(first, again, strict=True))
    assert all(p.dtype == np.uint8 and p.ndim == 3 and p.shape[2] == 3 for p in first)
    for i in range(3):
        for j in range(i):  # photo k and photo k' of one item differ
            assert first[i].shape != first[j].shape or not np.array_equal(first[i], first[j])
    # Photo k is the same whatever the count, alone or in a batch; the label and the seed change it.
    assert np.array_equal(validation_photo(item, validation_rng(VALIDATION_SEED, "mali", 2), SMALL), first[2])
    assert np.array_equal(validation_photos(item, "mali", 1, cfg=SMALL)[0], first[0])
    for other in (validation_photos(item, "chad", 1, cfg=SMALL)[0],
                  validation_photos(item, "mali", 1, seed=VALIDATION_SEED + 1, cfg=SMALL)[0]):
        assert other.shape != first[0].shape or not np.array_equal(other, first[0])
    assert VALIDATION_SEED not in (0, 1)  # the benchmark's test and dev photo seeds


def test_rng_takes_labels_and_indices():
    draw = [validation_rng(3, item, 0).random() for item in ("a", "b", 0, 1)]
    assert len(set(draw)) == 4
    assert validation_rng(3, "a", 0).random() == draw[0]


def test_phone_aspect_and_both_orientations(item):
    shapes = [p.shape[:2] for p in validation_photos(item, "mali", 40, cfg=SMALL)]
    for h, w in shapes:
        assert max(h, w) == 192 and min(h, w) in (144, 108)  # 3:4 and 9:16
    assert set(shapes) == {(192, 144), (144, 192), (192, 108), (108, 192)}
    # half the photos turned to the item (a wide flag: landscape), the others mostly portrait
    assert 0.5 < sum(h < w for h, w in shapes) / len(shapes) < 0.85
    tall = np.ascontiguousarray(item.transpose(1, 0, 2))
    assert sum(h > w for h, w in (p.shape[:2] for p in validation_photos(tall, "mali", 40, cfg=SMALL))) > 32
    big = validation_photos(item, "mali", 1)[0]
    assert max(big.shape[:2]) == 640 and min(big.shape[:2]) in (480, 360)


def test_item_covers_a_plausible_fraction_of_the_frame():
    # A white and a black item under the same draws: the photos differ where the item is.
    white = np.full((300, 220, 3), 255, np.uint8)
    fractions = []
    for k in range(12):
        a = validation_photo(white, validation_rng(5, "w", k), SMALL)
        b = validation_photo(np.zeros_like(white), validation_rng(5, "w", k), SMALL)
        fractions.append((np.abs(a.astype(int) - b.astype(int)).max(2) > 40).mean())
    assert min(fractions) > 0.03 and max(fractions) < 0.92
    assert 0.12 < float(np.median(fractions)) < 0.7


def test_any_item_size_and_shape():
    rng = np.random.default_rng(0)
    for shape in ((5, 300, 3), (1500, 900, 3), (40, 40, 4)):
        item = rng.integers(0, 256, shape, dtype=np.uint8)
        photo = validation_photo(item, validation_rng(0, "x", 0), SMALL)
        assert max(photo.shape[:2]) == 192 and photo.shape[2] == 3
    for bad in (np.zeros((20, 20, 3), np.float32), np.zeros((20, 20), np.uint8), "item.png"):
        with pytest.raises(ValueError, match="uint8"):
            validation_photo(bad, validation_rng(0, "x", 0), SMALL)


def test_config_round_trips_and_rejects_bad_values():
    cfg = ValidationSimConfig(aspects=[1.5], fill=[0.5, 0.9], jpeg_quality=[60, 80])
    assert cfg.aspects == (1.5,) and cfg.fill == (0.5, 0.9)
    assert ValidationSimConfig.from_dict(json.loads(json.dumps(cfg.to_dict()))) == cfg
    assert ValidationSimConfig.from_dict({}) == ValidationSimConfig()
    with pytest.raises(ConfigError, match=r"unknown keys \['blurr'\]"):
        ValidationSimConfig.from_dict({"blurr": 0.1})
    bad = [({"photo_long_side": 10}, "photo_long_side"), ({"photo_long_side": 640.0}, "photo_long_side"),
           ({"aspects": []}, "aspects"), ({"aspects": [0.5]}, "aspects"), ({"fill": [0.9, 0.4]}, "fill"),
           ({"fill": [0.4]}, "fill"), ({"fill": 0.5}, "fill"), ({"gamma": [0.8, float("nan")]}, "gamma"),
           ({"jpeg_quality": [50.5, 90]}, "jpeg_quality"), ({"moire_probability": 1.5}, "moire_probability"),
           ({"landscape_probability": True}, "landscape_probability"), ({"perspective": -0.1}, "perspective"),
           ({"motion_blur_probability": 0.7, "defocus_probability": 0.5}, "defocus_probability")]
    for data, name in bad:
        with pytest.raises(ConfigError, match=name):
            ValidationSimConfig.from_dict(data)


def test_imports_no_torch_nor_the_other_simulators():
    code = ("import sys, pocketvec.data.validation_sim\n"
            "bad = [m for m in ('torch', 'pocketvec.bench', 'pocketvec.data.augment', 'albumentations')"
            " if m in sys.modules]\n"
            "assert not bad, bad\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
