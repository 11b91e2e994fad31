"""Export benchmark (not a test): size and onnxruntime latency of each format/precision, one run.

Run: PYTHONPATH=src python experiments/export_benchmark.py --images src/pocketvec/assets/demo_items --runs 30
Without --run it exports a Lite0 with ImageNet weights and a random head; with --run RUN, that run. A
run trained with `int8_grid` is compared with its shipped (rounded) and its trained float weights: one
row per file and reference.
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np

from pocketvec.file_kinds import file_size


def ort_latency_ms(path: Path, size: int, runs: int, fold_int8: bool = True) -> float:
    """Median wall time of one image (batch 1) on one onnxruntime thread, with the runtime's session
    options (`fold_int8=False`: onnxruntime's defaults, which run int8 weights' DequantizeLinear per call)."""
    import onnxruntime as ort

    from pocketvec.runtime.onnx_options import session_options

    options = session_options(path, threads=1) if fold_int8 else ort.SessionOptions()
    options.intra_op_num_threads = options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).uniform(0, 255, (1, 3, size, size)).astype(np.float32)
    for _ in range(5):
        session.run(None, {"image": x})
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        session.run(None, {"image": x})
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def random_head_run(folder: Path) -> Path:
    """Lite0 with its ImageNet backbone and a random-init embedding head (seed 0), as a run folder."""
    import torch

    from pocketvec.train.checkpoint import save_run
    from pocketvec.train.encoder import EncoderConfig, build_encoder
    from pocketvec.train.pretrained import load_lite_backbone

    torch.manual_seed(0)
    model = build_encoder(EncoderConfig())
    load_lite_backbone(model.backbone, "tf_efficientnet_lite0")
    return save_run(folder / "run", model.eval())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--images", required=True, help="parity images (and calibration, without --calibration)")
    parser.add_argument("--calibration", help="w8a8 calibration images (default: --images)")
    parser.add_argument("--run", help="run folder to export (default: Lite0 ImageNet with a random head)")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    from pocketvec.export.coreml_export import export_coreml
    from pocketvec.export.onnx_export import export_onnx
    from pocketvec.export.source import QUANTIZE_CHOICES
    from pocketvec.export.verify import verify_models
    from pocketvec.train.checkpoint import read_run_config

    calibration = args.calibration or args.images
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        run = Path(args.run) if args.run else random_head_run(tmp)
        size = int(read_run_config(run)["encoder"]["preprocess"]["input_size"])
        files = {f"onnx {q}": export_onnx(run, tmp / f"{q}.onnx", q, calibration) for q in QUANTIZE_CHOICES["onnx"]}
        files.update({f"coreml {q}": export_coreml(run, tmp / f"{q}.mlpackage", q, calibration_dir=calibration)
                      for q in QUANTIZE_CHOICES["coreml"]})
        report = verify_models(run, list(files.values()), args.images)
        print("| file | size (MB) | ORT latency, 1 thread, batch 1, median (ms) | against | max abs diff | mean cos "
              "| min cos | top-1 agree | decision agree | bars |")
        print("|---|---|---|---|---|---|---|---|---|---|")
        for label, path in files.items():
            latency = f"{ort_latency_ms(path, size, args.runs):.2f}" if path.suffix == ".onnx" else "n/a (Core ML)"
            if label == "onnx int8":
                latency += f" ({ort_latency_ms(path, size, args.runs, fold_int8=False):.2f} with ORT defaults)"
            for row in (r for r in report.rows if r.model == path.name):
                bars = "pass" if row.passed else "FAIL: " + "; ".join(row.failures)
                print(f"| {label} | {file_size(path) / 1e6:.2f} | {latency} | {report.reference_label(row.reference)} "
                      f"| {row.max_abs_diff:.2e} | {row.mean_cosine:.5f} | {row.min_cosine:.5f} | "
                      f"{row.top1_agreement:.0%} | {row.decision_agreement:.0%} | {bars} |")


if __name__ == "__main__":
    main()
