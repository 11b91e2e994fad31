"""Where w8a8 loses parity, and what each fix of the export buys: one run, every variant against fp32.

Calibration as the export does it (`pocketvec.export.calibration.calibration_sets` on the 24 demo items:
128 training-simulator photos + the clean items); scored on other images: every other q0 photo of the
look-alike and pages tiers and every other flags gallery image, as `pocketvec bench` wrote them. Prints
mean / min cosine to the fp32 model's embeddings and top-1 agreement (the first half of the images
matched against the second half as a gallery). docs/EXPORT.md, "Decisions".

ONNX (onnxruntime static QDQ, MinMax), each against the fp32 ONNX file:
  - timm's dynamic "same" padding, whose shape arithmetic gets quantized;
  - static padding (`pocketvec.export.static_graph`), each rung of the export's ladder (`pocketvec.export.w8a8`:
    float activations in the head and the first k convolutions, their weights int8 as the export stores them).
Core ML (coremltools' LinearQuantizer, the quantized torch graph the ML program computes), against torch:
  - batch norms unfolded with moving-average observers (coremltools' defaults);
  - batch norms folded, min/max observers, each rung of the ladder.

    python experiments/w8a8_sensitivity.py src/pocketvec/assets/base /work/benchwork
"""

from __future__ import annotations

import argparse
import copy
import tempfile
from pathlib import Path

import numpy as np
import onnx
import torch
from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from pocketvec.bench.measure import parity
from pocketvec.data.assets import demo_items_dir
from pocketvec.export.calibration import calibration_sets, load_batch
from pocketvec.export.coreml_w8a8 import calibrated, embeddings, float_modules, quantized_graph
from pocketvec.export.onnx_export import export_onnx_fp32
from pocketvec.export.onnx_quantize import FeedReader, embed_file, float_nodes, root_warnings_off, store_float_parts
from pocketvec.export.source import load_export_source
from pocketvec.export.static_graph import fold_batch_norms, freeze_same_padding
from pocketvec.export.w8a8 import LADDER


def agreement(reference: np.ndarray, got: np.ndarray) -> str:
    """The benchmark's parity figures, the first half of the images matched against the second half."""
    half = len(reference) // 2
    p = parity(reference[half:], reference[:half], got[half:], got[:half])
    return f"mean cosine {p['mean_cosine']:.4f}  min {p['min_cosine']:.4f}  top-1 agreement {p['top1_agreement']:.3f}"


def onnx_variants(model, metadata, calibration: np.ndarray, pixels: np.ndarray, work: Path) -> None:
    static = freeze_same_padding(copy.deepcopy(model), metadata.preprocess.input_size)
    for name, source in (("dynamic padding (before)", model), ("static padding", static)):
        fp32, prepared = work / "fp32.onnx", work / "prepared.onnx"
        # export_onnx_fp32 freezes the padding itself: the "before" file is traced directly
        if source is model:
            size = metadata.preprocess.input_size
            torch.onnx.export(model.eval(), (torch.zeros(2, 3, size, size),), str(fp32), input_names=["image"],
                              output_names=["embedding"], dynamic_axes={"image": {0: "batch"}}, opset_version=17,
                              dynamo=False)
        else:
            export_onnx_fp32(model, fp32, metadata)
        reference = embed_file(fp32, pixels)
        quant_pre_process(str(fp32), str(prepared), skip_symbolic_shape=True)
        graph = onnx.load(str(prepared)).graph
        for rung in LADDER if source is static else LADDER[:1]:
            out = work / "w8a8.onnx"
            with root_warnings_off():
                quantize_static(str(prepared), str(out), FeedReader(calibration), quant_format=QuantFormat.QDQ,
                                per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                                nodes_to_exclude=float_nodes(graph, rung))
            onnx.save(store_float_parts(onnx.load(str(out))), str(out))
            print(f"onnx   {name:28s} {rung.describe():58s} {agreement(reference, embed_file(out, pixels))}",
                  flush=True)


def coreml_before(model, calibration: torch.Tensor) -> torch.nn.Module:
    """The Core ML w8a8 graph with coremltools' defaults: batch norms frozen, not folded; moving averages."""
    from coremltools.optimize.torch.quantization import LinearQuantizerConfig, ModuleLinearQuantizerConfig
    from timm.utils.model import freeze_batch_norm_2d

    frozen = freeze_same_padding(freeze_batch_norm_2d(copy.deepcopy(model).eval()), calibration.shape[-1])
    config = LinearQuantizerConfig(global_config=ModuleLinearQuantizerConfig(
        quantization_scheme="affine", milestones=[0, 0, 10**9, 0]))
    return calibrated(frozen, config, calibration)


def coreml_variants(model, calibration: np.ndarray, pixels: np.ndarray) -> None:
    calibration_t, pixels_t = torch.from_numpy(calibration), torch.from_numpy(pixels)
    reference = embeddings(model, pixels_t)
    before = coreml_before(model, calibration_t)
    print(f"coreml {'unfolded, moving average':28s} {LADDER[0].describe():58s} "
          f"{agreement(reference, embeddings(before, pixels_t))}", flush=True)
    size = calibration.shape[-1]
    static = fold_batch_norms(freeze_same_padding(copy.deepcopy(model).eval(), size), size)
    for rung in LADDER:
        graph = quantized_graph(static, calibration_t, float_modules(static, size, rung))
        print(f"coreml {'folded, min/max':28s} {rung.describe():58s} "
              f"{agreement(reference, embeddings(graph, pixels_t))}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("run", type=Path, help="a run folder (config.json + model.safetensors)")
    parser.add_argument("benchwork", type=Path, help="`pocketvec bench --work` folder (its tiers' images)")
    args = parser.parse_args()
    model, metadata = load_export_source(args.run, local_rerank=False)
    spec = metadata.preprocess
    calibration = calibration_sets(demo_items_dir(), spec).calibration
    scored = (sorted((args.benchwork / "lookalikes" / "queries").glob("*--q0.jpg"))[::2]
              + sorted((args.benchwork / "pages" / "queries").glob("*--q0.jpg"))[::2]
              + sorted((args.benchwork / "flags" / "gallery").glob("*.png"))[::2])
    pixels = load_batch(scored, spec.query_specs()[0])
    print(f"calibration {len(calibration)} images, scored on {len(pixels)} images", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        onnx_variants(model, metadata, calibration, pixels, Path(tmp))
    coreml_variants(model, calibration, pixels)


if __name__ == "__main__":
    main()
