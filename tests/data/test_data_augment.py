"""Phone-photo simulation on the embedded items and backgrounds: determinism, geometry, config."""

from __future__ import annotations

import dataclasses
import pickle

import numpy as np
import pytest

from pocketvec.data import augment_effects as fx
from pocketvec.data.assets import backgrounds_dir, demo_items_dir
from pocketvec.data.augment import AugmentConfig, PhoneAugment, load_backgrounds
from pocketvec.data.augment_scene import item_quad
from pocketvec.errors import ConfigError, DatasetError
from pocketvec.runtime.images import load_image

SIZE = 96  # small frames keep the tests fast; the code path is the same as at 224


@pytest.fixture(scope="module")
def items() -> list[np.ndarray]:
    return [load_image(demo_items_dir() / f"{n}.png") for n in ("flag_chad", "doc_memman_p026")]


@pytest.fixture(scope="module")
def augment() -> PhoneAugment:
    return PhoneAugment(AugmentConfig(), SIZE, backgrounds=backgrounds_dir())


def _all_effects() -> AugmentConfig:
    probabilities = {f.name: 1.0 for f in dataclasses.fields(AugmentConfig) if f.name.startswith("p_")}
    return AugmentConfig(**probabilities)


def test_same_seed_same_pixels_other_seed_other_pixels(items, augment):
    first = [augment(items[i % 2], np.random.default_rng(7)) for i in range(2)]
    again = [augment(items[i % 2], np.random.default_rng(7)) for i in range(2)]
    for a, b in zip(first, again, strict=True):
        assert a.shape == (SIZE, SIZE, 3) and a.dtype == np.uint8
        np.testing.assert_array_equal(a, b)
    # a copy sent to a data-loader worker (pickled) makes the same pixels
    copy = pickle.loads(pickle.dumps(augment))
    np.testing.assert_array_equal(copy(items[0], np.random.default_rng(7)), first[0])
    other = augment(items[0], np.random.default_rng(8))
    assert np.abs(other.astype(int) - first[0].astype(int)).mean() > 5
    # a fresh augmenter with every effect on is reproducible too (albumentations seeded per call)
    full = PhoneAugment(_all_effects(), SIZE, backgrounds=backgrounds_dir())
    stream_a, stream_b = np.random.default_rng(3), np.random.default_rng(3)
    for _ in range(6):
        np.testing.assert_array_equal(full(items[1], stream_a), full(items[1], stream_b))


def test_item_shows_on_a_real_background(items):
    """With no effects, the flag's colours fill a share of the frame within the configured coverage."""
    clean = AugmentConfig(strength=0.0, fill=(0.5, 0.5), **{
        f.name: 0.0 for f in dataclasses.fields(AugmentConfig) if f.name.startswith("p_") and f.name != "p_background"})
    photo = PhoneAugment(clean, SIZE, backgrounds=backgrounds_dir())(items[0], np.random.default_rng(0))
    flag = items[0]
    palette = np.unique(flag.reshape(-1, 3), axis=0).astype(int)
    distance = np.abs(photo.reshape(-1, 1, 3).astype(int) - palette[None]).max(axis=2).min(axis=1)
    share = (distance <= 12).mean()
    assert 0.4 < share < 0.6, share  # 50 % coverage, with anti-aliased edges and background look-alikes


@pytest.mark.parametrize("strength", [0.0, 1.0, 2.0])
def test_item_quad_stays_within_cutoff(strength):
    config = AugmentConfig(strength=strength)
    rng = np.random.default_rng(0)
    for shape in [(300, 450), (480, 371), (100, 800)]:
        for _ in range(50):
            quad = item_quad(shape, SIZE, config, rng)
            slack = config.max_cutoff * min(strength, 1.0) * SIZE + 1e-3
            assert quad.min() >= -slack and quad.max() <= SIZE + slack
            x, y = quad[:, 0], quad[:, 1]
            area = 0.5 * abs(np.dot(x, np.roll(y, 1)) - np.dot(y, np.roll(x, 1))) / SIZE**2
            assert area <= config.fill[1] + 1e-6
            if strength == 0.0:  # upright: a plain scaled rectangle
                assert np.allclose(quad[0, 1], quad[1, 1]) and np.allclose(quad[0, 0], quad[3, 0])


def test_phone_frame_stretches_the_item_as_scale_fill_squashes_a_phone_photo():
    upright = AugmentConfig(strength=0.0, fill=(0.3, 0.3))
    framed = dataclasses.replace(upright, p_phone_frame=1.0)
    rng = np.random.default_rng(0)
    ratios = set()
    for _ in range(40):
        plain, stretched = item_quad((300, 450), SIZE, upright, rng), item_quad((300, 450), SIZE, framed, rng)
        width, height = np.ptp(stretched, axis=0) / np.ptp(plain, axis=0)
        ratios.add(round(float(width / height), 2))
        assert np.isclose(width * height, 1.0, atol=1e-3)  # the area is kept
    assert ratios == {round(r, 2) for a in (4 / 3, 16 / 9) for r in (a, 1 / a)}


def test_phone_frame_off_leaves_every_photo_unchanged(items):
    make = [PhoneAugment(c, SIZE, backgrounds=backgrounds_dir()) for c in (AugmentConfig(),
                                                                            AugmentConfig(p_phone_frame=0.0))]
    photos = [m(items[0], np.random.default_rng(3)) for m in make]
    assert np.array_equal(*photos)


def test_every_effect_runs_and_changes_pixels(items):
    frame = PhoneAugment(AugmentConfig(p_background=0.0), SIZE, backgrounds=[])(items[1], np.random.default_rng(1))
    rng = np.random.default_rng(2)
    outputs = {
        "shadow": fx.apply_light(frame, fx.shadow_map(SIZE, rng, 1.0), None),
        "vignette": fx.apply_light(frame, fx.vignette_map(SIZE, rng, 1.0), None),
        "glare": fx.apply_light(frame, None, fx.glare_map(SIZE, rng, 1.0)),
        "exposure": fx.exposure(frame, rng, 1.0),
        "blur": fx.gaussian_blur(frame, rng, 1.0),
        "low_resolution": fx.low_resolution(frame, rng, 1.0),
        "noise": fx.sensor_noise(frame, rng, 1.0, fx.NoiseBank(SIZE)),
        "erase": fx.erase(frame, rng, 1.0),
        "jpeg": fx.jpeg(frame, rng, (20, 20)),
    }
    for name, out in outputs.items():
        assert out.shape == frame.shape and out.dtype == np.uint8, name
        assert np.abs(out.astype(int) - frame.astype(int)).mean() > 0.2, name
    assert outputs["glare"].astype(int).sum() > frame.astype(int).sum()
    assert outputs["shadow"].astype(int).sum() < frame.astype(int).sum()


def test_config_validation_and_round_trip():
    config = AugmentConfig(strength=1.5, fill=[0.3, 0.8])
    assert AugmentConfig.from_dict(config.to_dict()) == config
    with pytest.raises(ConfigError, match="unknown keys"):
        AugmentConfig.from_dict({"strenght": 1.0})
    with pytest.raises(ConfigError, match=r"Got 1\.5"):
        AugmentConfig(p_glare=1.5)
    with pytest.raises(ConfigError, match=r"fill.*Got \(0.9, 0.4\)"):
        AugmentConfig(fill=(0.9, 0.4))
    with pytest.raises(ConfigError, match="Got 'strong'"):
        AugmentConfig(strength="strong")
    with pytest.raises(ConfigError, match="needs at least one background"):
        PhoneAugment(AugmentConfig(), SIZE, backgrounds=[])
    with pytest.raises(ConfigError, match="Got 16"):
        PhoneAugment(AugmentConfig(), 16, backgrounds=backgrounds_dir())
    with pytest.raises(ConfigError, match="uint8"):
        PhoneAugment(AugmentConfig(p_background=0.0), SIZE, backgrounds=[])(
            np.zeros((10, 10, 3), np.float32), np.random.default_rng(0))


def test_backgrounds_load_shrunk(tmp_path):
    backgrounds = load_backgrounds(backgrounds_dir(), max_side=200)
    assert len(backgrounds) >= 6 and all(max(b.shape[:2]) <= 200 for b in backgrounds)
    with pytest.raises(DatasetError, match="no background images"):
        load_backgrounds(tmp_path)
