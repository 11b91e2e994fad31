"""Measurement only: the shipped small's ONNX w8a8 with another onnxruntime calibration method than MinMax
(Percentile, Entropy, Distribution), the ladder as shipped, verified on the 192 photos of docs/EXPORT.md
(`pocketvec data photos src/pocketvec/assets/demo_items --out /tmp/w8/photos --per-item 8 --seed 3`).

    python experiments/w8a8_calibration_method.py Percentile /tmp/pct 99.999
"""

from __future__ import annotations

import argparse
from pathlib import Path

import onnx
import onnxruntime.quantization as ort_quantization

from pocketvec.data.assets import demo_items_dir
from pocketvec.export.onnx_export import export_onnx
from pocketvec.export.verify import verify_models
from pocketvec.file_kinds import file_size


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("method", choices=["MinMax", "Percentile", "Entropy", "Distribution"])
    parser.add_argument("out", type=Path)
    parser.add_argument("percentile", type=float, nargs="?", default=99.999)
    parser.add_argument("--model", type=Path, default=Path("src/pocketvec/assets/small"))
    parser.add_argument("--photos", type=Path, default=Path("/tmp/w8/photos"))
    args = parser.parse_args()
    original = ort_quantization.quantize_static
    extra = {"CalibPercentile": args.percentile} if args.method == "Percentile" else {}

    def with_method(*positional, **options):  # to_w8a8 imports quantize_static from the package when it runs
        options["calibrate_method"] = getattr(ort_quantization.CalibrationMethod, args.method)
        options["extra_options"] = {**(options.get("extra_options") or {}), **extra}
        return original(*positional, **options)

    ort_quantization.quantize_static = with_method
    demo = demo_items_dir()
    args.out.mkdir(parents=True, exist_ok=True)
    path = export_onnx(args.model, args.out / "w8a8.onnx", "w8a8", calibration_dir=demo)
    print(path, file_size(path), onnx.load(str(path)).doc_string)
    for row in verify_models(args.model, [path], args.photos, demo).rows:
        print(row.model, f"mean {row.mean_cosine:.5f} min {row.min_cosine:.5f} local {row.local_mean_cosine:.5f} "
              f"top1 {row.top1_agreement:.3f} decision {row.decision_agreement:.3f}")


if __name__ == "__main__":
    main()
