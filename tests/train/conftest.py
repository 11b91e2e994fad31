"""Fixtures of the training tests: a handful of real demo items in a temp folder."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from pocketvec.data.assets import demo_items_dir

FEW_ITEMS = ("flag_chad", "flag_romania", "flag_italy", "doc_memman_p026", "doc_memman_p027", "doc_microtype_p010")


@pytest.fixture(scope="session")
def few_items(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("items")
    for name in FEW_ITEMS:
        shutil.copy(demo_items_dir() / f"{name}.png", folder / f"{name}.png")
    return folder


@pytest.fixture(scope="session")
def lookalike_items(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Three demo flags in three printed editions each (original, serial number, seal): 9 look-alikes."""
    from PIL import Image

    from pocketvec.bench.lookalikes import make_edition
    from pocketvec.runtime.images import load_image

    folder = tmp_path_factory.mktemp("lookalikes")
    for index, name in enumerate(("flag_chad", "flag_romania", "flag_italy")):
        original = load_image(demo_items_dir() / f"{name}.png")
        for edition in ("original", "serial", "seal"):
            image = make_edition(original, edition, np.random.default_rng([index]))
            Image.fromarray(image).save(folder / f"{name}--{edition}.png")
    return folder
