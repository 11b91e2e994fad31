"""Zero-shot Recall@1 on benchmark tiers, per input size: the PyTorch fp32 model, cosine, the tier's clean
gallery (no gallery views, no re-rank) and phone photos as `pocketvec bench` built them.

The enroll preset's start model per input size and crop mode, and the tier's enrolled run when the benchmark
has one (docs/lab/enroll-notebook.md: 288 px on the benchmark):

    python experiments/bench_input_size.py /work/benchwork/flags

A trained run at other input sizes than its own, on every tier of a benchmark folder (photos cropped with the
run's `query_crop_mode`; docs/TRAINING.md: the small student at 192 px):

    python experiments/bench_input_size.py /work/benchwork --run src/pocketvec/assets/small --sizes 160,192,224
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

from common import recall_at_1

from pocketvec.train.checkpoint import load_run
from pocketvec.train.presets import preset_config
from pocketvec.train.student import build_student

SETTINGS = ((224, "center_crop"), (224, "scale_fit"), (288, "scale_fit"))


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


def run_at_sizes(work: Path, run: Path, sizes: list[int]) -> None:
    model = load_run(run)
    for size in sizes:
        spec = replace(model.config.preprocess, input_size=size)
        scores = [f"{tier} {recall_at_1(model, work / tier, spec, spec.query_specs()[0]):.3f}"
                  for tier in ("pages", "flags", "lookalikes")]
        print(f"{run}\t{size} px\t" + "\t".join(scores), flush=True)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("folder", type=Path, help="a tier folder, or with --run the benchmark's work folder")
    parser.add_argument("--run", type=Path, help="a run folder to score at --sizes on every tier")
    parser.add_argument("--sizes", default="160,192,224")
    args = parser.parse_args()
    if args.run:
        run_at_sizes(args.folder, args.run, [int(size) for size in args.sizes.split(",")])
    else:
        main(args.folder)
