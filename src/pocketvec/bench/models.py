"""The models the benchmark compares, each a small spec that prepares a run folder.

A spec either returns a run folder (config.json + model.safetensors, the form every export path
takes) or raises NotAvailable with the reason (a piece not merged yet, no student given). The
table then says "not available"; nothing is ever stood in for a missing model.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path

from pocketvec.bench.code_id import code_id
from pocketvec.bench.dataset import BenchSet
from pocketvec.bench.texts import TierTexts
from pocketvec.bounded_json import read_json

ENROLL_TIME_FILE = "enroll_wall_time.json"  # next to an enrolled run: the wall time of the training command


class NotAvailable(Exception):
    """A model or format that cannot be benchmarked in this checkout; the message says why."""


@dataclass(frozen=True)
class BenchContext:
    work: Path
    bench: BenchSet
    student_run: Path | None = None  # the base student (zero-shot); enrolled starts from it
    enroll_args: tuple[str, ...] = ()  # extra arguments for `pocketvec train --preset enroll`
    texts: TierTexts | None = None  # the tier's printed text, when text verification is measured


@dataclass(frozen=True)
class ModelSpec:
    key: str
    title: str
    protocol: str  # frozen (same numbers in both protocols) | zero-shot | enrolled
    prepare: Callable[[BenchContext], Path]


def _frozen_lite(variant: str, backbone: str, input_size: int, ctx: BenchContext) -> Path:
    """An ImageNet EfficientNet-Lite backbone, pooled features L2-normalised, saved as a run folder."""
    try:
        from pocketvec.train.pretrained import load_lite_backbone
    except ImportError as e:
        raise NotAvailable(f"pocketvec.train.pretrained is not merged yet ({e})") from e
    from pocketvec.runtime.preprocess import PreprocessSpec
    from pocketvec.train.checkpoint import save_run
    from pocketvec.train.encoder import Encoder, EncoderConfig

    run_dir = ctx.work / "models" / variant
    if (run_dir / "model.safetensors").is_file():
        return run_dir
    preprocess = replace(PreprocessSpec(), input_size=input_size)
    try:
        model = Encoder(EncoderConfig(backbone=backbone, embedding_dim=1280, head="none", preprocess=preprocess))
    except Exception as e:  # an Encoder without the frozen-baseline head ('none') is not merged yet
        raise NotAvailable(f"Encoder cannot build a frozen {backbone} ({e})") from e
    load_lite_backbone(model.backbone, backbone)
    save_run(run_dir, model.eval(), extra={"bench_model": f"frozen ImageNet {backbone}"})
    return run_dir


def prepare_teacher(ctx: BenchContext) -> Path:
    return _frozen_lite("teacher-lite2", "tf_efficientnet_lite2", 260, ctx)


def prepare_lite0(ctx: BenchContext) -> Path:
    return _frozen_lite("frozen-lite0", "tf_efficientnet_lite0", 224, ctx)


def base_student(ctx: BenchContext) -> Path | None:
    """The student given with --student, else the shipped base student when this checkout has one."""
    if ctx.student_run is not None:
        return ctx.student_run
    try:
        from pocketvec.train.student import base_run_dir
    except ImportError:
        return None
    shipped = base_run_dir()
    return shipped if (shipped / "model.safetensors").is_file() else None


def prepare_student(ctx: BenchContext) -> Path:
    run_dir = base_student(ctx)
    if run_dir is None:
        raise NotAvailable("no base student: none shipped in pocketvec/assets/base and no --student RUN given")
    if not (run_dir / "config.json").is_file():
        raise NotAvailable(f"{run_dir} is not a run folder (no config.json)")
    return run_dir


def prepare_small(ctx: BenchContext) -> Path:
    """The distilled small student (PP-LCNet 0.5) shipped in pocketvec/assets/small, zero-shot."""
    from pocketvec.train.student import shipped_run_dir

    run_dir = shipped_run_dir("small")
    if not (run_dir / "model.safetensors").is_file():
        raise NotAvailable("no small student shipped in pocketvec/assets/small")
    return run_dir


def enroll_on_gallery(ctx: BenchContext, preset: str, start: Path | None, name: str) -> Path:
    """`pocketvec train --preset PRESET` fine-tuned on the benchmark's gallery images (one image per item), from
    the run folder `start` (None: the preset's own start). The run folder is keyed by the start, the gallery and
    the preset's settings and the code that trains (pocketvec.train, pocketvec.data), so a changed preset or
    recipe enrols again instead of reusing a run."""
    import pocketvec.data
    import pocketvec.train
    from pocketvec.train.presets import preset_config

    start_id = read_json(start / "config.json", "run config")["embedding_space_id"] if start else "imagenet"
    gallery_id = read_json(ctx.work / "benchmark.json", "benchmark stamp")["key"]
    recipe = {"preset": preset_config(preset).to_dict(), "args": ctx.enroll_args,
              "code": code_id(pocketvec.train, pocketvec.data)}
    args_id = hashlib.sha256(json.dumps(recipe, sort_keys=True, default=str).encode()).hexdigest()[:8]
    run_dir = ctx.work / "models" / f"{name}-{start_id}-{gallery_id}-{args_id}"
    if (run_dir / "model.safetensors").is_file():
        return run_dir
    init = ["--set", f"init={start}"] if start is not None else []
    command = [sys.executable, "-m", "pocketvec", "train", "--preset", preset, "--data",
               str(ctx.bench.gallery_dir), "--out", str(run_dir), *init, *ctx.enroll_args]
    started = time.monotonic()
    done = subprocess.run(command, capture_output=True, text=True,
                          env={**os.environ, "TERM": "dumb", "COLUMNS": "200", "NO_COLOR": "1"})
    if done.returncode != 0:
        said = [line.strip(" │╭╮╰╯─") for line in (done.stderr + done.stdout).splitlines()]
        said = [line for line in said if any(c.isalnum() for c in line)] or ["no output"]
        raise NotAvailable(f"`pocketvec train --preset {preset}` failed: {said[-1][:200]}")
    (run_dir / ENROLL_TIME_FILE).write_text(json.dumps({"seconds": round(time.monotonic() - started, 1)}))
    return run_dir


def prepare_enrolled(ctx: BenchContext) -> Path:
    """The enroll preset on the gallery, from the base student when there is one (else ImageNet Lite0)."""
    return enroll_on_gallery(ctx, "enroll", base_student(ctx), "student-enrolled")


def prepare_enrolled_small(ctx: BenchContext) -> Path:
    """The enroll-small preset on the gallery, from the shipped small student."""
    return enroll_on_gallery(ctx, "enroll-small", prepare_small(ctx), "small-enrolled")


MODEL_SPECS: dict[str, ModelSpec] = {
    spec.key: spec
    for spec in (
        ModelSpec("teacher", "EfficientNet-Lite2 teacher (frozen, ImageNet)", "frozen", prepare_teacher),
        ModelSpec("lite0", "EfficientNet-Lite0 (frozen, ImageNet)", "frozen", prepare_lite0),
        ModelSpec("student", "student, zero-shot", "zero-shot", prepare_student),
        ModelSpec("small", "small student (PP-LCNet 0.5, distilled), zero-shot", "zero-shot", prepare_small),
        ModelSpec("enrolled", "student, enrolled on the gallery", "enrolled", prepare_enrolled),
        ModelSpec("enrolled-small", "small student, enrolled on the gallery", "enrolled", prepare_enrolled_small),
    )
}
