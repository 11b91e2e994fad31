"""Teacher loaders on tiny randomly initialised checkpoints written to a temp dir (timm, transformers
CLIP / SigLIP / SigLIP2, open_clip), and clear errors for folders that are not checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch
from safetensors.torch import save_file

from pocketvec.errors import ConfigError, ModelFileError
from pocketvec.train.teachers import load_teacher


def _check(teacher, dim: int) -> None:
    pixels = torch.rand(2, 3, 48, 40) * 255  # any size: the teacher resizes to its own input
    out = teacher(pixels)
    assert out.shape == (2, dim)
    torch.testing.assert_close(out.norm(dim=1), torch.ones(2))
    assert not any(p.requires_grad for p in teacher.parameters())
    teacher.train()
    assert not teacher.training


def test_timm_checkpoint(tmp_path: Path) -> None:
    import timm

    model = timm.create_model("lcnet_050", num_classes=7)
    save_file(model.state_dict(), str(tmp_path / "model.safetensors"))
    (tmp_path / "config.json").write_text(json.dumps({
        "architecture": "lcnet_050", "num_classes": 7,
        "pretrained_cfg": {"input_size": [3, 64, 64], "mean": [0.5] * 3, "std": [0.5] * 3}}))
    teacher = load_teacher(tmp_path)
    assert teacher.teacher_id.startswith("timm:lcnet_050-") and teacher.input_size == 64
    _check(teacher, 1280)
    assert teacher.outputs(torch.rand(1, 3, 64, 64) * 255)["logits"].shape == (1, 7)


TINY_TEXT = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2,
             "vocab_size": 99}
TINY_VISION = {"hidden_size": 32, "intermediate_size": 37, "num_hidden_layers": 1, "num_attention_heads": 2,
               "patch_size": 8}


@pytest.mark.parametrize("kind", ["clip", "siglip", "siglip2"])
def test_transformers_checkpoint(tmp_path: Path, kind: str) -> None:
    import transformers as tf

    if kind == "clip":
        config = tf.CLIPConfig(text_config=TINY_TEXT, vision_config={**TINY_VISION, "image_size": 32},
                               projection_dim=16)
        model, dim = tf.CLIPModel(config), 16
    elif kind == "siglip":
        config = tf.SiglipConfig(text_config=TINY_TEXT, vision_config={**TINY_VISION, "image_size": 32})
        model, dim = tf.SiglipModel(config), 32
    else:
        config = tf.Siglip2Config(text_config=TINY_TEXT, vision_config={**TINY_VISION, "num_patches": 16})
        model, dim = tf.Siglip2Model(config), 32
    model.save_pretrained(tmp_path)
    teacher = load_teacher(tmp_path)
    assert teacher.teacher_id.startswith(f"transformers:{kind}-") and teacher.input_size == 32
    _check(teacher, dim)
    pixels = torch.rand(1, 3, 32, 32) * 255
    x = teacher.normalise(pixels)
    if kind == "siglip2":  # our patchify equals the image processor's
        from transformers.models.siglip2.image_processing_siglip2 import convert_image_to_patches

        assert torch.equal(teacher._siglip2_inputs(x)["pixel_values"][0], convert_image_to_patches(x[0], 8))
    else:
        direct = model.eval().get_image_features(pixel_values=x)
        direct = direct if isinstance(direct, torch.Tensor) else direct.pooler_output
        torch.testing.assert_close(teacher(pixels), torch.nn.functional.normalize(direct, dim=-1))


def test_open_clip_checkpoint(tmp_path: Path) -> None:
    open_clip = pytest.importorskip("open_clip")
    model_cfg = {"embed_dim": 16,
                 "vision_cfg": {"image_size": 32, "layers": 1, "width": 32, "patch_size": 8, "head_width": 16},
                 "text_cfg": {"context_length": 8, "vocab_size": 100, "width": 32, "heads": 2, "layers": 1}}
    (tmp_path / "open_clip_config.json").write_text(json.dumps({
        "model_cfg": model_cfg, "preprocess_cfg": {"mean": [0.5] * 3, "std": [0.5] * 3}}))
    model = open_clip.model.CLIP(**model_cfg)
    save_file(model.state_dict(), str(tmp_path / "open_clip_model.safetensors"))
    teacher = load_teacher(tmp_path)
    assert teacher.teacher_id.startswith("open_clip:") and teacher.input_size == 32
    _check(teacher, 16)
    x = torch.rand(1, 3, 32, 32) * 255
    expected = torch.nn.functional.normalize(model.eval().encode_image((x - 127.5) / 127.5), dim=-1)
    torch.testing.assert_close(teacher(x), expected, atol=1e-5, rtol=1e-4)


def test_not_a_checkpoint(tmp_path: Path) -> None:
    with pytest.raises(ModelFileError, match="not a teacher checkpoint"):
        load_teacher(tmp_path)
    (tmp_path / "config.json").write_text("{broken")
    with pytest.raises(ModelFileError, match="unreadable JSON"):
        load_teacher(tmp_path)
    with pytest.raises(ConfigError, match="efficientnet_lite2"):
        load_teacher(tmp_path / "missing")
