"""Where ONNX w8a8 loses parity: static QDQ variants of a run's fp32 export, each against the fp32 file.

The variants: onnxruntime's MinMax (what `pocketvec export onnx --quantize w8a8` does), the embedding
head kept float, Percentile and Entropy calibration, and each backbone stage kept float in turn.
Calibration: 5 training-simulator photos of each of the 24 demo items (120); scored on other images:
every other q0 photo of the look-alike and pages tiers and every other flags gallery image, as
`pocketvec bench` wrote them. Prints mean / min cosine to the fp32 embeddings and top-1 agreement (the
first half of the images matched against the second half as a gallery). docs/bench/export.md.

    python scripts/w8a8_sensitivity.py src/pocketvec/assets/base /work/benchwork
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
from onnxruntime.quantization import CalibrationMethod, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from pocketvec.bench.measure import parity
from pocketvec.data.assets import demo_items_dir
from pocketvec.data.augment import PhoneAugment
from pocketvec.export.calibration import list_images, load_batch
from pocketvec.export.onnx_export import export_onnx
from pocketvec.export.onnx_quantize import FeedReader
from pocketvec.runtime.images import load_image
from pocketvec.runtime.metadata import INPUT_NAME
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess, to_batch
from pocketvec.train.checkpoint import read_run_config

PHOTOS_PER_ITEM = 5


def embeddings(path: Path, pixels: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {INPUT_NAME: pixels[i:i + 16]})[0] for i in range(0, len(pixels), 16)])


def agreement(reference: np.ndarray, got: np.ndarray) -> str:
    """The benchmark's parity figures, the first half of the images matched against the second half."""
    half = len(reference) // 2
    p = parity(reference[half:], reference[:half], got[half:], got[:half])
    return f"mean cosine {p['mean_cosine']:.4f}  min {p['min_cosine']:.4f}  top-1 agreement {p['top1_agreement']:.3f}"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder (config.json + model.safetensors)")
    parser.add_argument("benchwork", type=Path, help="`pocketvec bench --work` folder (its tiers' images)")
    args = parser.parse_args()
    spec = PreprocessSpec.from_dict(read_run_config(args.run)["encoder"]["preprocess"])
    simulate, rng = PhoneAugment(output_size=spec.input_size), np.random.default_rng(0)
    calibration = to_batch([preprocess(simulate(load_image(p), rng), spec)
                            for p in list_images(demo_items_dir()) for _ in range(PHOTOS_PER_ITEM)])
    scored = (sorted((args.benchwork / "lookalikes" / "queries").glob("*--q0.jpg"))[::2]
              + sorted((args.benchwork / "pages" / "queries").glob("*--q0.jpg"))[::2]
              + sorted((args.benchwork / "flags" / "gallery").glob("*.png"))[::2])
    pixels = load_batch(scored, spec)
    print(f"calibration {len(calibration)} photos, scored on {len(pixels)} images", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        fp32, prepared = work / "fp32.onnx", work / "prepared.onnx"
        export_onnx(args.run, fp32)
        reference = embeddings(fp32, pixels)
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        nodes = [n.name for n in onnx.load(str(prepared)).graph.node]
        head = [n for n in nodes if not n.startswith("/backbone")]
        variants: dict[str, tuple[list[str], CalibrationMethod]] = {
            "MinMax (the export's)": ([], CalibrationMethod.MinMax),
            "head float": (head, CalibrationMethod.MinMax),
            "Percentile": ([], CalibrationMethod.Percentile),
            "Entropy, head float": (head, CalibrationMethod.Entropy),
        }
        stages = ["conv_stem", *(f"blocks/blocks.{i}/" for i in range(7)), "conv_head"]
        variants |= {f"{stage.rstrip('/')} float": ([n for n in nodes if n.startswith(f"/backbone/{stage}")],
                                                     CalibrationMethod.MinMax) for stage in stages}
        for name, (exclude, method) in variants.items():
            out = work / "w8a8.onnx"
            quantize_static(str(prepared), str(out), FeedReader(calibration), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=exclude, calibrate_method=method)
            print(f"{name:24s} {agreement(reference, embeddings(out, pixels))}", flush=True)


if __name__ == "__main__":
    main()
