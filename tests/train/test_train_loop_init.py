"""Distillation with a local timm teacher (outputs cached on disk and reused); class-centre imprinting."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import timm
import torch
from safetensors.torch import save_file

from pocketvec.train.loop import Trainer
from pocketvec.train.presets import preset_config


def test_teacher_runs_once_per_image_and_view(few_items: Path, tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("POCKETVEC_CACHE", str(tmp_path / "cache"))
    teacher_dir = tmp_path / "teacher"
    teacher_dir.mkdir()
    save_file(timm.create_model("lcnet_050", num_classes=5).state_dict(), str(teacher_dir / "model.safetensors"))
    (teacher_dir / "config.json").write_text(json.dumps({
        "architecture": "lcnet_050", "num_classes": 5, "pretrained_cfg": {"input_size": [3, 64, 64]}}))
    config = preset_config("smoke").with_overrides({
        "teacher": str(teacher_dir), "kd_weight": 0.5, "batch_classes": 3, "max_steps": 2, "eval_views": 0})
    first = Trainer(config, few_items, tmp_path / "a")
    first.run()
    assert first.cache.misses > 0 and first.losses["distill"].classifier.weight.grad is not None
    cached = list((tmp_path / "cache" / "teacher-outputs").rglob("*.safetensors"))
    assert len(cached) == first.cache.misses
    second = Trainer(config, few_items, tmp_path / "b")
    second.run()
    assert second.cache.misses == 0 and second.cache.hits == first.cache.hits + first.cache.misses


def test_imprinted_centres_are_the_clean_item_embeddings(few_items: Path, tmp_path: Path) -> None:
    from pocketvec.runtime.preprocess import preprocess
    from pocketvec.train.evaluate import embed

    config = preset_config("smoke").with_overrides({"imprint_centres": True, "eval_views": 0})
    trainer = Trainer(config, few_items, tmp_path / "run")
    clean = torch.stack([torch.from_numpy(preprocess(image, config.encoder.preprocess)).permute(2, 0, 1).float()
                         for image in trainer.maker.images])
    expected = torch.from_numpy(embed(trainer.model, clean))  # policy "single": class i = item i
    torch.testing.assert_close(trainer.losses["partial_fc"].weight.detach(), expected, atol=1e-5, rtol=0)


@pytest.mark.parametrize("loss", ["triplet", "center"])
def test_alternative_losses_train_in_the_loop(few_items: Path, tmp_path: Path, loss: str) -> None:
    config = preset_config("smoke").with_overrides({"loss": loss, "batch_classes": 3, "max_steps": 2,
                                                    "eval_views": 0})
    trainer = Trainer(config, few_items, tmp_path / "run")
    before = {k: v.clone() for k, v in trainer.model.head.state_dict().items()}
    trainer.run()
    assert loss in trainer.losses
    assert any(not torch.equal(before[k], v) for k, v in trainer.model.head.state_dict().items())
