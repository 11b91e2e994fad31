"""Zero-shot Recall@1 of the enroll preset's start model on a benchmark tier, per input size and crop mode.

Scores the PyTorch fp32 model on the tier's clean gallery and phone photos as `pocketvec bench` built them
(docs/bench/enroll.md, fourth round), and the tier's enrolled run when the benchmark has one.

    python scripts/bench_input_size.py /work/benchwork/flags
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from pocketvec.runtime.images import load_image
from pocketvec.runtime.metrics import recall_at_k
from pocketvec.runtime.preprocess import preprocess
from pocketvec.train.checkpoint import load_run
from pocketvec.train.evaluate import embed
from pocketvec.train.presets import preset_config
from pocketvec.train.student import build_student

SETTINGS = ((224, "center_crop"), (224, "scale_fit"), (288, "scale_fit"))


def pixels(paths: list[Path], spec) -> torch.Tensor:
    return torch.from_numpy(np.stack([preprocess(load_image(p), spec) for p in paths])).permute(0, 3, 1, 2).float()


def recall_at_1(model: torch.nn.Module, tier: Path) -> float:
    """The tier's photos (`<label>--q<k>.jpg`) against its gallery (`<label>.png`), as `pocketvec bench` wrote them."""
    gallery = sorted((tier / "gallery").glob("*.png"))
    photos = sorted((tier / "queries").glob("*.jpg"))
    spec = model.config.preprocess
    scores = embed(model, pixels(photos, spec)) @ embed(model, pixels(gallery, spec)).T
    return recall_at_k(scores, [p.name.rsplit("--q", 1)[0] for p in photos], [p.stem for p in gallery], 1)


def main(tier: Path) -> None:
    preset = preset_config("enroll")
    for size, crop in SETTINGS:
        config = preset.with_overrides({"encoder.preprocess.input_size": size, "encoder.preprocess.crop_mode": crop})
        model = build_student(config.encoder, config.init)
        print(f"{tier.name}\tzero-shot\t{size} px {crop}\tR@1 {recall_at_1(model, tier):.3f}", flush=True)
    for run in sorted((tier / "models").glob("student-enrolled-*")):
        model = load_run(run)
        spec = model.config.preprocess
        print(f"{tier.name}\tenrolled {run.name}\t{spec.input_size} px {spec.crop_mode}\t"
              f"R@1 {recall_at_1(model, tier):.3f}", flush=True)


if __name__ == "__main__":
    main(Path(sys.argv[1]))
