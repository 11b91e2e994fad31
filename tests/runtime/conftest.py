"""Runtime fixtures: real ONNX models (tiny lcnet_050 at 96 px, exported once per session) and the
embedded demo items as real images."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO_ITEMS = REPO / "src" / "pocketvec" / "assets" / "demo_items"
BACKGROUNDS = REPO / "src" / "pocketvec" / "assets" / "backgrounds"


def build_test_encoder(seed: int, crop_mode: str = "center_crop"):
    """A tiny untrained encoder whose batch-norm statistics are measured on the demo items.

    Fresh random weights map every image to nearly the same direction (cosine ~1.0); measuring
    the normalisation statistics on real images (no training) spreads them apart, so matching
    an enrolled image against the others means something."""
    import torch

    from pocketvec.runtime.images import load_image
    from pocketvec.runtime.preprocess import PreprocessSpec, preprocess, to_batch
    from pocketvec.train.encoder import EncoderConfig, build_encoder

    torch.manual_seed(seed)
    spec = PreprocessSpec(input_size=96, crop_mode=crop_mode)
    model = build_encoder(EncoderConfig(backbone="lcnet_050", embedding_dim=64, preprocess=spec))
    for module in model.modules():
        if isinstance(module, torch.nn.modules.batchnorm._BatchNorm):
            module.reset_running_stats()
            module.momentum = None  # cumulative average over the batch below
    pixels = to_batch([preprocess(load_image(p), spec) for p in sorted(DEMO_ITEMS.glob("*.png"))])
    with torch.no_grad():
        model.train()(torch.from_numpy(pixels))
    return model.eval()


def _export(path: Path, seed: int, crop_mode: str = "center_crop") -> Path:
    from pocketvec.export.onnx_export import export_onnx_fp32

    export_onnx_fp32(build_test_encoder(seed, crop_mode), path)
    return path


@pytest.fixture(scope="session")
def test_encoder():
    """The factory behind the ONNX fixtures, to rebuild their models in PyTorch."""
    return build_test_encoder


@pytest.fixture(scope="session")
def runtime_dir(artifacts_dir: Path) -> Path:
    path = artifacts_dir / "runtime"
    path.mkdir(exist_ok=True)
    return path


@pytest.fixture(scope="session")
def onnx_model(runtime_dir: Path) -> Path:
    return _export(runtime_dir / "model_a.onnx", seed=0)


@pytest.fixture(scope="session")
def other_onnx_model(runtime_dir: Path) -> Path:
    """Another model (other weights, other embedding space) with a different crop mode."""
    return _export(runtime_dir / "model_b.onnx", seed=1, crop_mode="scale_fit")


@pytest.fixture(scope="session")
def item_paths() -> list[Path]:
    paths = sorted(p for p in DEMO_ITEMS.iterdir() if p.suffix == ".png")
    assert len(paths) >= 20, f"demo items missing under {DEMO_ITEMS}"
    return paths


@pytest.fixture(scope="session")
def photo_paths() -> list[Path]:
    return sorted(BACKGROUNDS.glob("*.jpg"))


@pytest.fixture
def items_dir(tmp_path: Path, item_paths: list[Path]) -> Path:
    """A flat folder of 10 demo items (label = file name)."""
    folder = tmp_path / "items"
    folder.mkdir()
    for path in item_paths[:6] + item_paths[12:16]:
        shutil.copy(path, folder / path.name)
    return folder
