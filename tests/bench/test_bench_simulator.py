"""The benchmark photo simulator: deterministic with its seed, realistic enough to differ from the item."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from pocketvec.bench.simulator import PhotoSimConfig, query_rng, simulate_photo
from pocketvec.errors import ConfigError


def _flag() -> np.ndarray:
    """A tricolour with an emblem: enough structure for correlation checks."""
    item = np.zeros((225, 300, 3), np.uint8)  # 4:3, like the photo
    item[:, :100], item[:, 100:200], item[:, 200:] = (0, 60, 160), (250, 250, 250), (200, 20, 30)
    item[70:130, 130:170] = (240, 200, 0)
    return item


def _decode(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def test_same_seed_same_bytes_and_seeds_differ() -> None:
    item = _flag()
    first = [simulate_photo(item, query_rng(7, 3, k), []) for k in range(3)]
    again = [simulate_photo(item, query_rng(7, 3, k), []) for k in range(3)]
    assert first == again
    assert len(set(first)) == 3  # photos of one item differ from each other
    assert simulate_photo(item, query_rng(8, 3, 0), []) != first[0]


def test_photo_is_a_jpeg_of_the_configured_size() -> None:
    photo = _decode(simulate_photo(_flag(), query_rng(0, 0, 0), [], PhotoSimConfig(photo_long_side=320)))
    assert photo.shape == (240, 320, 3)
    portrait = _decode(simulate_photo(_flag().transpose(1, 0, 2), query_rng(0, 0, 0), [],
                                      PhotoSimConfig(photo_long_side=320)))
    assert portrait.shape == (320, 240, 3)
    assert _decode(simulate_photo(_flag()[:150], query_rng(0, 0, 0), [], PhotoSimConfig(photo_long_side=320))
                   ).shape == (240, 320, 3)


def test_without_effects_the_item_is_reproduced() -> None:
    """With every effect off and the item filling the frame, the photo is the item itself."""
    plain = PhotoSimConfig(photo_long_side=300, fill=(1.0, 1.0), rotation_deg=0, perspective=0, gain=(1, 1),
                           contrast=(1, 1), gamma=(1, 1), illumination_ramp=0, white_balance=0, shadow_probability=0,
                           glare_probability=0, blur_sigma=(0, 0), motion_probability=0, noise_sigma=(0, 0),
                           jpeg_quality=(95, 95))
    photo = _decode(simulate_photo(_flag(), query_rng(0, 0, 0), [], plain)).astype(np.float64)
    reference = _flag().astype(np.float64)
    assert photo.shape == reference.shape
    assert np.abs(photo[4:-4, 4:-4] - reference[4:-4, 4:-4]).mean() < 4.0
    # the default simulation changes the photo a lot more than that
    noisy = _decode(simulate_photo(_flag(), query_rng(0, 0, 0), [], PhotoSimConfig(photo_long_side=300)))
    assert np.abs(noisy.astype(np.float64) - reference).mean() > 15.0


def test_config_rejects_unknown_keys() -> None:
    with pytest.raises(ConfigError, match="blurr"):
        PhotoSimConfig.from_dict({"blurr": 1})
    assert PhotoSimConfig.from_dict({"fill": [0.5, 0.6]}).fill == (0.5, 0.6)


def test_phone_framing_holds_the_phone_whatever_the_item() -> None:
    """`phone` photos are 3:4 or 9:16, portrait or landscape, for a wide item as for a tall one."""
    phone = PhotoSimConfig(photo_long_side=320, framing="phone")
    for item in (_flag(), _flag().transpose(1, 0, 2)):
        shapes = {_decode(simulate_photo(item, query_rng(0, 0, k), [], phone)).shape[:2] for k in range(40)}
        assert shapes == {(320, 240), (240, 320), (320, 180), (180, 320)}
    with pytest.raises(ConfigError, match="framing"):
        PhotoSimConfig(framing="square")
