"""Run folders for export tests: a small random-init encoder and the ImageNet Lite0 student."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.train.checkpoint import save_run
from pocketvec.train.encoder import EncoderConfig, build_encoder

DEMO_ITEMS = Path(__file__).resolve().parents[2] / "src" / "pocketvec" / "assets" / "demo_items"


@pytest.fixture(scope="session")
def demo_items() -> Path:
    assert any(DEMO_ITEMS.glob("*.png")), f"demo items missing under {DEMO_ITEMS}"
    return DEMO_ITEMS


@pytest.fixture(scope="session")
def few_items(tmp_path_factory, demo_items) -> Path:
    """6 real demo items (flags and manual pages), for the slower Lite0 checks."""
    folder = tmp_path_factory.mktemp("few_items")
    paths = sorted(demo_items.glob("*.png"))
    for path in paths[::4][:6]:
        shutil.copy(path, folder / path.name)
    return folder


@pytest.fixture(scope="session")
def small_run(tmp_path_factory, demo_items) -> Path:
    """PP-LCNet-0.5 at 96 px, random init; its config records the demo items as its training data."""
    torch.manual_seed(0)
    model = build_encoder(EncoderConfig(backbone="lcnet_050", preprocess=PreprocessSpec(input_size=96)))
    return save_run(tmp_path_factory.mktemp("small_run"), model.eval(), {"train": {"data": str(demo_items)}})


@pytest.fixture(scope="session")
def lite0_run(tmp_path_factory) -> Path:
    """The default student (tf_efficientnet_lite0, 224 px) with its ImageNet backbone, random head."""
    from pocketvec.train.pretrained import load_lite_backbone

    torch.manual_seed(0)
    model = build_encoder(EncoderConfig())
    load_lite_backbone(model.backbone, "tf_efficientnet_lite0")
    return save_run(tmp_path_factory.mktemp("lite0_run"), model.eval())
