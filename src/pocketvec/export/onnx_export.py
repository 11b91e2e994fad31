"""Export an encoder to ONNX (fp32, fp16, weight-only int8 or static QDQ w8a8) with the pocketvec metadata."""

from __future__ import annotations

import copy
import dataclasses
import tempfile
from pathlib import Path

import onnx
import torch

from pocketvec.atomic import write_bytes_atomic
from pocketvec.export.source import export_graph, model_metadata
from pocketvec.export.source import local_rerank_of as local_rerank_of  # where callers found it before
from pocketvec.export.static_graph import freeze_same_padding
from pocketvec.runtime.metadata import INPUT_NAME, METADATA_KEY, ModelMetadata
from pocketvec.runtime.weights_digest import onnx_digest
from pocketvec.train.encoder import Encoder


def write_metadata(proto: onnx.ModelProto, metadata: ModelMetadata) -> None:
    del proto.metadata_props[:]
    entry = proto.metadata_props.add()
    entry.key, entry.value = METADATA_KEY, metadata.to_json()


def save_onnx_atomic(proto: onnx.ModelProto, out: Path, metadata: ModelMetadata) -> Path:
    """Write `proto` with `metadata` and the digest of its weights to `out` through a temp file + fsync + rename."""
    write_metadata(proto, dataclasses.replace(metadata, weights_digest=onnx_digest(proto)))
    return write_bytes_atomic(out, proto.SerializeToString())


def export_onnx_fp32(model: Encoder, out: str | Path, metadata: ModelMetadata | None = None) -> Path:
    """fp32 ONNX with a dynamic batch axis; input `image` NCHW 0-255, output `embedding` (and `local` when
    the metadata asks for a local re-rank). The input size is fixed, so "same" padding is exported static."""
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    model = model.eval()
    metadata = metadata or model_metadata(model)
    size = model.config.preprocess.input_size
    dummy = torch.zeros(2, 3, size, size)
    graph, outputs = export_graph(freeze_same_padding(copy.deepcopy(model), size), metadata)
    with tempfile.TemporaryDirectory(dir=out.parent) as tmp:
        traced = Path(tmp) / "model.onnx"
        torch.onnx.export(
            graph, (dummy,), str(traced), input_names=[INPUT_NAME], output_names=list(outputs),
            dynamic_axes={name: {0: "batch"} for name in [INPUT_NAME, *outputs]}, opset_version=17, dynamo=False,
        )
        proto = onnx.load(str(traced))
    return save_onnx_atomic(proto, out, metadata)


def export_onnx(run_dir: str | Path, out: str | Path, quantize: str = "none",
                calibration_dir: str | Path | None = None, local_rerank: bool = True) -> Path:
    """Export a run folder's encoder to `out` at fp32 ("none"), fp16, int8 or w8a8.

    int8: weight-only (per-channel int8 weights, float activations), as Core ML's int8.
    w8a8: static QDQ (int8 weights, uint8 activations) calibrated on real item images:
    `calibration_dir`, else the run's own training data.
    """
    from pocketvec.export.source import check_choice, load_export_source

    check_choice("onnx", quantize)
    model, metadata = load_export_source(run_dir, local_rerank)
    out = Path(out)
    if quantize == "none":
        return export_onnx_fp32(model, out, metadata)
    from pocketvec.export import onnx_quantize

    with tempfile.TemporaryDirectory() as tmp:
        fp32 = export_onnx_fp32(model, Path(tmp) / "fp32.onnx", metadata)
        if quantize == "fp16":
            proto = onnx_quantize.to_fp16(fp32)
        elif quantize == "int8":
            proto = onnx_quantize.to_weight_int8(onnx.load(str(fp32)))
        else:
            proto = onnx_quantize.to_w8a8(fp32, run_dir, metadata.preprocess, calibration_dir, Path(tmp))
    return save_onnx_atomic(proto, out, metadata)
