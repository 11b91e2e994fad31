"""The look-alike tier's recoloured edition is never the original again."""

from __future__ import annotations

import numpy as np
import pytest

from pocketvec.bench.lookalikes import make_edition
from pocketvec.data.assets import demo_items_dir
from pocketvec.runtime.images import load_image


def _changed_share(a: np.ndarray, b: np.ndarray) -> float:
    return float((np.abs(a.astype(int) - b.astype(int)).mean(axis=-1) > 10).mean())


def test_a_flag_whose_main_colour_is_black_is_still_recoloured() -> None:
    flag = np.zeros((60, 90, 3), np.uint8)  # laid out like the Bahamas: a black block, cyan and yellow
    flag[:, :40] = (0, 0, 1)  # as rendered: near-black, which HSV calls fully saturated
    flag[:20, 40:] = flag[40:, 40:] = (0, 192, 200)
    flag[20:40, 40:] = (250, 230, 0)
    for seed in range(12):
        assert _changed_share(flag, make_edition(flag, "recolour", np.random.default_rng(seed))) > 0.15


@pytest.mark.parametrize("name", ["flag_chad", "flag_ireland", "flag_monaco", "flag_netherlands"])
def test_demo_flags_are_recoloured(name: str) -> None:
    flag = load_image(demo_items_dir() / f"{name}.png")
    assert _changed_share(flag, make_edition(flag, "recolour", np.random.default_rng(0))) > 0.15
