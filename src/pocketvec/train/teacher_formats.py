"""Teachers from local transformers (CLIP, SigLIP, SigLIP2) and open_clip checkpoint folders. No downloads."""

from __future__ import annotations

import math
from pathlib import Path

import torch
from torch import nn

from pocketvec.bounded_json import read_json
from pocketvec.errors import ModelFileError
from pocketvec.train.teacher_base import Teacher, file_digest

CLIP_MEAN, CLIP_STD = (0.48145466, 0.4578275, 0.40821073), (0.26862954, 0.26130258, 0.27577711)
VISION_TYPES = ("clip", "siglip", "siglip2", "clip_vision_model", "siglip_vision_model", "siglip2_vision_model")


def _weights_file(folder: Path, names: tuple[str, ...]) -> Path:
    for name in names:
        if (folder / name).is_file():
            return folder / name
    raise ModelFileError(f"{folder}: no weights file (looked for {list(names)})")


def _pooled(output) -> torch.Tensor:
    return output if isinstance(output, torch.Tensor) else output.pooler_output


class TransformersTeacher(Teacher):
    """Image tower of a transformers CLIP / SigLIP / SigLIP2 model: the projected image embedding."""

    def __init__(self, model: nn.Module, model_type: str, teacher_id: str, size: int, mean, std) -> None:
        super().__init__(teacher_id, size, mean, std)
        self.model = model
        self.model_type = model_type
        self.patch_size = getattr(getattr(model.config, "vision_config", model.config), "patch_size", 16)
        self.freeze()

    def _siglip2_inputs(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        """SigLIP2 (NaFlex) takes flattened patches in (row, col, patch_y, patch_x, channel) order."""
        n, c, h, w = x.shape
        p = self.patch_size
        patches = x.reshape(n, c, h // p, p, w // p, p).permute(0, 2, 4, 3, 5, 1).reshape(n, (h // p) * (w // p), -1)
        return {"pixel_values": patches,
                "pixel_attention_mask": torch.ones(n, patches.shape[1], dtype=torch.int32),
                "spatial_shapes": torch.tensor([[h // p, w // p]] * n, dtype=torch.long)}

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        inputs = self._siglip2_inputs(x) if self.model_type.startswith("siglip2") else {"pixel_values": x}
        if hasattr(self.model, "get_image_features"):
            return _pooled(self.model.get_image_features(**inputs))
        out = self.model(**inputs)
        return out.image_embeds if getattr(out, "image_embeds", None) is not None else out.pooler_output


def transformers_teacher(folder: Path) -> Teacher:
    from transformers import AutoConfig, AutoModel

    config = AutoConfig.from_pretrained(folder, local_files_only=True)
    if config.model_type not in VISION_TYPES:
        raise ModelFileError(f"{folder}: transformers model_type {config.model_type!r} is not an image-text "
                             f"model; supported: {list(VISION_TYPES)}")
    weights = _weights_file(folder, ("model.safetensors", "pytorch_model.bin"))
    try:
        model = AutoModel.from_pretrained(folder, local_files_only=True).eval()
    except Exception as e:
        raise ModelFileError(f"{folder}: transformers could not load the model ({e})") from e
    vision = getattr(config, "vision_config", config)
    if config.model_type.startswith("siglip2"):
        size = math.isqrt(vision.num_patches) * vision.patch_size
    else:
        size = int(vision.image_size)
    processor = folder / "preprocessor_config.json"
    default_mean, default_std = (CLIP_MEAN, CLIP_STD) if config.model_type.startswith("clip") else ((0.5,) * 3,) * 2
    extra = read_json(processor, "preprocessor config", ModelFileError) if processor.is_file() else {}
    mean, std = tuple(extra.get("image_mean", default_mean)), tuple(extra.get("image_std", default_std))
    teacher_id = f"transformers:{config.model_type}-{file_digest(weights)}@{size}"
    return TransformersTeacher(model, config.model_type, teacher_id, size, mean, std)


class OpenClipTeacher(Teacher):
    def __init__(self, model: nn.Module, teacher_id: str, size: int, mean, std) -> None:
        super().__init__(teacher_id, size, mean, std)
        self.model = model
        self.freeze()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.encode_image(x)


def open_clip_teacher(folder: Path) -> Teacher:
    try:
        import open_clip
    except ImportError as e:
        raise ModelFileError(f"{folder}: an open_clip checkpoint needs `pip install open_clip_torch`") from e
    config = read_json(folder / "open_clip_config.json", "open_clip config", ModelFileError)
    weights = _weights_file(folder, ("open_clip_model.safetensors", "open_clip_pytorch_model.safetensors",
                                     "open_clip_pytorch_model.bin"))
    try:
        model = open_clip.create_model(f"local-dir:{folder}", device="cpu").eval()
    except Exception as e:
        raise ModelFileError(f"{folder}: open_clip could not load the model ({e})") from e
    pre = config.get("preprocess_cfg", {})
    size = model.visual.image_size
    size = int(size[0] if isinstance(size, (tuple, list)) else size)
    mean, std = tuple(pre.get("mean", CLIP_MEAN)), tuple(pre.get("std", CLIP_STD))
    teacher_id = f"open_clip:{file_digest(weights)}@{size}"
    return OpenClipTeacher(model, teacher_id, size, mean, std)
