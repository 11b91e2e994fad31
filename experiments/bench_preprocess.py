"""Preprocessing speed: the spec as first written (float64, tap by tap: pocketvec's preprocess at revision
410c92c^, before the fast resampler, read from git) vs pocketvec's fast resampler, side by side on the same
photos, interleaved photo by photo; checks identical pixels. `--before REV` adds the fast resampler as it was
at git revision REV (e.g. main), timed in the same run, to measure a change.

Photos: the bundled background photos, each resized with Pillow to 640x480 (a phone photo at the
size a camera preview gives), and their 480x640 portrait transposes.

Run (one core, as in docs/lab/runtime-notebook.md; the resampler pins BLAS to one thread itself; docs/RUNTIME.md
runs it with the default thread settings):
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src \\
        python experiments/bench_preprocess.py --repeats 20 [--before main]
"""

from __future__ import annotations

import argparse
import time

import numpy as np
from common import FIRST_PREPROCESS, REPO, preprocess_at
from PIL import Image

from pocketvec.runtime.preprocess import PreprocessSpec, preprocess


def photos() -> list[np.ndarray]:
    out = []
    for path in sorted((REPO / "src/pocketvec/assets/backgrounds").glob("*.jpg")):
        landscape = np.asarray(Image.open(path).convert("RGB").resize((640, 480), Image.BILINEAR))
        out += [landscape, np.ascontiguousarray(landscape.transpose(1, 0, 2))]
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=20)
    parser.add_argument("--size", type=int, default=224)
    parser.add_argument("--before", metavar="REV", help="also time the fast resampler of this git revision")
    args = parser.parse_args()
    images = photos()
    reference = preprocess_at(FIRST_PREPROCESS)
    methods = {"reference": reference}
    if args.before:
        methods[f"fast@{args.before}"] = preprocess_at(args.before)
    methods["fast"] = preprocess
    print(f"{len(images)} photos of 480x640, {args.repeats} rounds, one image at a time; "
          "wall ms (CPU ms of this thread)")
    for crop in ("center_crop", "scale_fit", "scale_fill"):
        spec = PreprocessSpec(input_size=args.size, crop_mode=crop)
        wall: dict[str, list[float]] = {name: [] for name in methods}
        cpu: dict[str, list[float]] = {name: [] for name in methods}
        for image in images:  # warm the plan caches; check the pixels
            expected = reference(image, spec)
            for name, fn in methods.items():
                assert np.array_equal(fn(image, spec), expected), (crop, name)
        for _ in range(args.repeats):
            for image in images:
                for name, fn in methods.items():
                    start, start_cpu = time.perf_counter(), time.thread_time()
                    fn(image, spec)
                    wall[name].append((time.perf_counter() - start) * 1e3)
                    cpu[name].append((time.thread_time() - start_cpu) * 1e3)
        cells = [f"{name} min {min(wall[name]):.2f} median {np.median(wall[name]):.2f} "
                 f"({np.median(cpu[name]):.2f})" for name in methods]
        print(f"{crop:12s} " + " | ".join(cells) + " | identical pixels: yes")


if __name__ == "__main__":
    main()
