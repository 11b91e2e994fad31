"""Size, FLOPs and onnxruntime latency of a small student against its teacher, all in one run (not a test).

Both run folders are exported to ONNX fp32, int8 (weight-only) and w8a8 (int8 activations, calibrated on
`--calibration`, the embedded demo items by default), as `pocketvec export onnx` makes them; latency is
onnxruntime on 1 thread, batch 1, the median of the files taking turns (pocketvec.bench.measure.onnx_latencies),
so load hits them alike.
Usage: python experiments/small_vs_teacher.py [--student RUN] [--teacher RUN] [--rounds N] [--calibration DIR]
Example: nice -n 19 python experiments/small_vs_teacher.py --student src/pocketvec/assets/small
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

from pocketvec.bench.measure import onnx_latencies, parameters_and_flops
from pocketvec.export.onnx_export import export_onnx
from pocketvec.train.student import shipped_run_dir

FORMS = ("none", "int8", "w8a8")
DEMO_ITEMS = Path(__file__).resolve().parents[1] / "src" / "pocketvec" / "assets" / "demo_items"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--student", type=Path, default=shipped_run_dir("small"))
    parser.add_argument("--teacher", type=Path, default=shipped_run_dir("base"))
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--calibration", type=Path, default=DEMO_ITEMS, help="w8a8 calibration items")
    args = parser.parse_args()
    import torch

    torch.set_num_threads(1)
    runs = {"teacher": args.teacher, "student": args.student}
    with tempfile.TemporaryDirectory() as tmp:
        files = {f"{name} {form}": export_onnx(run, Path(tmp) / f"{name}-{form}.onnx", form, args.calibration)
                 for name, run in runs.items() for form in FORMS}
        latency = onnx_latencies(files, rounds=args.rounds)
        sizes = {key: path.stat().st_size for key, path in files.items()}
    counts = {name: parameters_and_flops(run) for name, run in runs.items()}
    reference = latency["teacher none"]
    print("| model | file | size (bytes) | params | FLOPs | ORT latency (ms) | latency / teacher fp32 |")
    print("|---|---|---|---|---|---|---|")
    for key in files:
        name, form = key.split()
        params, flops = counts[name]
        print(f"| {name} ({runs[name]}) | {'fp32' if form == 'none' else form} | {sizes[key]:,} | {params:,} | "
              f"{flops / 1e6:.1f} M | {latency[key] * 1e3:.2f} | {latency[key] / reference:.3f} |")
    print(f"FLOPs student / teacher: {counts['student'][1] / counts['teacher'][1]:.3f}")


if __name__ == "__main__":
    main()
