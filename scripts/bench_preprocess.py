"""Preprocessing speed: the spec as first written (float64, tap by tap) vs pocketvec's fast
resampler, side by side on the same photos, interleaved photo by photo; checks identical pixels.

Photos: the bundled background photos, each resized with Pillow to 640x480 (a phone photo at the
size a camera preview gives), and their 480x640 portrait transposes.

Run (one core, as in docs/bench/runtime.md):
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src \\
        python scripts/bench_preprocess.py --repeats 20
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "tests" / "runtime"))

from preprocess_reference import reference_preprocess  # noqa: E402

from pocketvec.runtime.preprocess import PreprocessSpec, preprocess  # noqa: E402


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
    args = parser.parse_args()
    images = photos()
    print(f"{len(images)} photos of 480x640, {args.repeats} rounds, one image at a time")
    for crop in ("center_crop", "scale_fit", "scale_fill"):
        spec = PreprocessSpec(input_size=args.size, crop_mode=crop)
        times: dict[str, list[float]] = {"reference": [], "fast": []}
        for image in images:  # warm the plan cache; check the pixels
            assert np.array_equal(preprocess(image, spec), reference_preprocess(image, spec)), crop
        for _ in range(args.repeats):
            for image in images:
                for name, fn in (("reference", reference_preprocess), ("fast", preprocess)):
                    start = time.perf_counter()
                    fn(image, spec)
                    times[name].append(time.perf_counter() - start)
        ref, fast = (np.array(times[k]) * 1e3 for k in ("reference", "fast"))
        print(f"{crop:12s} reference min {ref.min():6.2f} median {np.median(ref):6.2f} ms | "
              f"fast min {fast.min():5.2f} median {np.median(fast):5.2f} ms | "
              f"ratio of medians {np.median(ref) / np.median(fast):5.1f}x | identical pixels: yes")


if __name__ == "__main__":
    main()
