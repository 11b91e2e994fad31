"""WiSE-FT after the fact: Recall@1 on a benchmark tier of start + alpha * (enrolled - start), per alpha.

The start is the enroll preset's start model (the shipped base) at the enrolled run's preprocessing; every
float tensor is blended, BatchNorm statistics included, as `pocketvec.train.keep_best.blend` does. Scores the
PyTorch fp32 model on the tier's gallery and photos as `pocketvec bench` built them (docs/ENROLMENT.md:
WiSE-FT). Alpha 1 is the run as it is; alpha 0 the start.

    python experiments/wise_ft_sweep.py /work/benchwork/flags/models/RUN --alphas 1,0.75,0.5,0.25
"""

from __future__ import annotations

import argparse
import copy
from pathlib import Path

from common import recall_at_1

from pocketvec.train.checkpoint import load_run
from pocketvec.train.keep_best import blend
from pocketvec.train.student import build_student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", type=Path, help="enrolled run folders under <tier>/models/")
    parser.add_argument("--alphas", default="1,0.75,0.5,0.25")
    args = parser.parse_args()
    for run in args.runs:
        tier, enrolled = run.parent.parent, load_run(run)
        start = build_student(enrolled.config, "base")
        for alpha in (float(a) for a in args.alphas.split(",")):
            model = blend(copy.deepcopy(enrolled), start, alpha)
            print(f"{tier.name}\t{run.name}\talpha {alpha:.2f}\tR@1 {recall_at_1(model, tier):.3f}", flush=True)


if __name__ == "__main__":
    main()
