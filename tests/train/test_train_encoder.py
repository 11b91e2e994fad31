"""Encoder heads (mlp, squeeze, none), config validation, the training pool manifest."""

from __future__ import annotations

import csv
import shutil
from pathlib import Path

import pytest
import torch

from pocketvec.data.assets import demo_items_dir
from pocketvec.errors import ConfigError, DatasetError
from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.train.encoder import Encoder, EncoderConfig
from pocketvec.train.pool import write_pool_manifest


@pytest.mark.parametrize(("head", "dim"), [("mlp", 32), ("squeeze", 48), ("none", 1280)])
def test_heads_give_unit_embeddings_of_the_configured_size(head: str, dim: int) -> None:
    model = Encoder(EncoderConfig(backbone="lcnet_050", embedding_dim=dim, head=head,
                                  preprocess=PreprocessSpec(input_size=64))).eval()
    with torch.no_grad():
        out = model(torch.rand(2, 3, 64, 64) * 255)
    assert out.shape == (2, dim)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))


def test_encoder_config_errors_echo_the_value() -> None:
    with pytest.raises(ConfigError, match="Got 'pooling'"):
        EncoderConfig(head="pooling")
    with pytest.raises(ConfigError, match="Got 'resnet9000'"):
        EncoderConfig(backbone="resnet9000")
    with pytest.raises(ConfigError, match="backbone width 1280"):
        Encoder(EncoderConfig(backbone="lcnet_050", embedding_dim=64, head="none"))


def test_pool_manifest_reads_the_cache_and_refuses_benchmark_sets(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("POCKETVEC_CACHE", str(tmp_path))
    (tmp_path / "kgeography-flags").mkdir()
    for name in ("flag_chad", "flag_mali", "flag_italy"):
        shutil.copy(demo_items_dir() / f"{name}.png", tmp_path / "kgeography-flags" / f"{name}.png")
    out = write_pool_manifest(tmp_path / "pool.csv", {"kgeography-flags": 2})
    rows = list(csv.DictReader(out.read_text().splitlines()))
    assert len(rows) == 2 and all(r["label"].startswith("kgeography-flags/flag_") for r in rows)
    assert all(Path(r["path"]).is_file() for r in rows)
    with pytest.raises(DatasetError, match="benchmark set"):
        write_pool_manifest(tmp_path / "x.csv", {"flag-icons": 5})
    with pytest.raises(DatasetError, match="pocketvec data fetch latex-docs"):
        write_pool_manifest(tmp_path / "x.csv", {"latex-docs": 5})
