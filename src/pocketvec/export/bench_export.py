"""Export benchmark (not a test): size and onnxruntime latency of each format/precision, one run.

Run: PYTHONPATH=src python -m pocketvec.export.bench_export --images src/pocketvec/assets/demo_items --runs 30
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from pathlib import Path

import numpy as np


def file_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file()) if path.is_dir() else path.stat().st_size


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--images", required=True, help="calibration / parity images")
    parser.add_argument("--runs", type=int, default=50)
    args = parser.parse_args()
    import torch

    from pocketvec.export.coreml_export import export_coreml
    from pocketvec.export.onnx_export import export_onnx
    from pocketvec.export.source import QUANTIZE_CHOICES
    from pocketvec.export.verify import verify_models
    from pocketvec.train.checkpoint import save_run
    from pocketvec.train.encoder import EncoderConfig, build_encoder
    from pocketvec.train.pretrained import load_lite_backbone

    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        torch.manual_seed(0)
        model = build_encoder(EncoderConfig())
        load_lite_backbone(model.backbone, "tf_efficientnet_lite0")
        run = save_run(tmp / "run", model.eval())
        files = {f"onnx {q}": export_onnx(run, tmp / f"{q}.onnx", q, args.images) for q in QUANTIZE_CHOICES["onnx"]}
        files.update({f"coreml {q}": export_coreml(run, tmp / f"{q}.mlpackage", q, calibration_dir=args.images)
                      for q in QUANTIZE_CHOICES["coreml"]})
        report = {r.model: r for r in verify_models(run, list(files.values()), args.images).rows}
        print("| file | size (MB) | ORT latency, 1 thread, batch 1, median (ms) | max abs diff | mean cos | min cos "
              "| top-1 agree | decision agree | bars |")
        print("|---|---|---|---|---|---|---|---|---|")
        for label, path in files.items():
            latency = f"{ort_latency_ms(path, 224, args.runs):.2f}" if path.suffix == ".onnx" else "n/a (Core ML)"
            if label == "onnx int8":
                latency += f" ({ort_latency_ms(path, 224, args.runs, fold_int8=False):.2f} with ORT defaults)"
            row = report[path.name]
            bars = "pass" if row.passed else "FAIL: " + "; ".join(row.failures)
            print(f"| {label} | {file_size(path) / 1e6:.2f} | {latency} | {row.max_abs_diff:.2e} | "
                  f"{row.mean_cosine:.5f} | {row.min_cosine:.5f} | {row.top1_agreement:.0%} | "
                  f"{row.decision_agreement:.0%} | {bars} |")


if __name__ == "__main__":
    main()
