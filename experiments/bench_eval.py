"""`pocketvec eval` end to end (decode, preprocess, inference, matching), images per second, with
the spec's first implementation of preprocessing ("before": pocketvec's preprocess at revision 410c92c^,
read from git) and the fast one ("after"), side by
side in one run: the two are run alternately, `--rounds` times each, on the same model and photos.
`--before REV` adds the fast preprocessing as it was at git revision REV (e.g. main); `--no-reference`
leaves the first implementation out.

Run (one inference thread, as in docs/RUNTIME.md):
    pocketvec export onnx src/pocketvec/assets/base --out /tmp/base.onnx
    pocketvec data photos src/pocketvec/assets/demo_items --out /tmp/photos --per-item 8 \\
        --distractors src/pocketvec/assets/backgrounds
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src \\
        python experiments/bench_eval.py /tmp/base.onnx --gallery src/pocketvec/assets/demo_items \\
        --queries /tmp/photos --rounds 3 [--before main]
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
from common import FIRST_PREPROCESS, preprocess_at

import pocketvec.runtime.engines.base as engine_base
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.evaluation import evaluate
from pocketvec.runtime.preprocess import preprocess


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--gallery", type=Path, required=True)
    parser.add_argument("--queries", type=Path, required=True)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--before", metavar="REV", help="also the fast preprocessing of this git revision")
    parser.add_argument("--no-reference", action="store_true", help="leave out the first implementation")
    args = parser.parse_args()
    variants = {} if args.no_reference else {"before (reference preprocessing)": preprocess_at(FIRST_PREPROCESS)}
    if args.before:
        variants[f"fast preprocessing at {args.before}"] = preprocess_at(args.before)
    variants["after (fast preprocessing)"] = preprocess
    engine = open_engine(args.model, threads=1)
    seconds: dict[str, list[float]] = {name: [] for name in variants}
    reports = {}
    for _ in range(args.rounds):
        for name, fn in variants.items():
            engine_base.preprocess = fn  # what Engine.prepare calls
            start = time.perf_counter()
            reports[name] = evaluate(engine, args.gallery, args.queries)
            seconds[name].append(time.perf_counter() - start)
    engine_base.preprocess = preprocess
    first = next(iter(reports.values()))
    images = len(first.queries.labels) + len(first.gallery_labels)
    same = all(r.to_dict() == first.to_dict() for r in reports.values())
    print(f"{images} images per eval ({len(first.queries.labels)} queries, {len(first.gallery_labels)} gallery), "
          f"{args.rounds} rounds; identical reports: {same}")
    for name, times in seconds.items():
        best, median = min(times), float(np.median(times))
        print(f"{name:34s} best {best:6.2f} s ({images / best:6.1f} images/s)  median {median:6.2f} s "
              f"({images / median:6.1f} images/s)")


if __name__ == "__main__":
    main()
