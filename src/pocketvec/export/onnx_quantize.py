"""ONNX fp16 (float32 I/O kept), weight-only int8 (`int8`) and static QDQ int8 (`w8a8`)."""

from __future__ import annotations

import logging
from collections.abc import Callable, Collection, Iterator
from contextlib import contextmanager
from inspect import signature
from pathlib import Path

import numpy as np
import onnx
from onnx import helper, numpy_helper
from onnxruntime.quantization import CalibrationDataReader

from pocketvec.export.calibration import CalibrationSets, calibration_feeds, calibration_folder, calibration_sets
from pocketvec.export.w8a8 import Rung, quantize_on_ladder
from pocketvec.int8_grid import INT8_WEIGHT_THRESHOLD, quantize_per_channel
from pocketvec.runtime.metadata import INPUT_NAME
from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.train.checkpoint import read_run_config

WEIGHT_INPUT = {"Conv": 1, "Gemm": 1, "MatMul": 1}  # op -> index of its weight input


def to_fp16(fp32_path: Path) -> onnx.ModelProto:
    """Weights and activations in float16; the `image` input and `embedding` output stay float32."""
    from onnxruntime.transformers.float16 import convert_float_to_float16

    return convert_float_to_float16(onnx.load(str(fp32_path)), keep_io_types=True)


def output_axis(node: onnx.NodeProto) -> int:
    """The output-channel axis of `node`'s weight: Conv (O, I, kH, kW), Gemm (O, I) if transB, MatMul (I, O)."""
    if node.op_type == "Conv":
        return 0
    if node.op_type == "Gemm":
        return 0 if any(a.name == "transB" and a.i for a in node.attribute) else 1
    return 1


def _replace_weights(proto: onnx.ModelProto, ops: Collection[str],
                     encode: Callable[[str, np.ndarray, onnx.NodeProto], onnx.NodeProto],
                     above: int = INT8_WEIGHT_THRESHOLD) -> onnx.ModelProto:
    """Each float32 weight of an `ops` node with more than `above` values is removed from the initializers
    and made by the node `encode(name, weight, consumer)` returns (which adds its own initializers), placed
    first so that the graph stays topologically sorted; smaller weights stay float32."""
    inits = {t.name: t for t in proto.graph.initializer}
    producers = []
    for node in proto.graph.node:
        index = WEIGHT_INPUT.get(node.op_type) if node.op_type in ops else None
        name = node.input[index] if index is not None and len(node.input) > index else None
        if name not in inits:
            continue  # not a weight, or already replaced (a weight shared by several nodes)
        weight = numpy_helper.to_array(inits[name])
        if weight.dtype != np.float32 or weight.ndim < 2 or weight.size <= above:
            continue
        proto.graph.initializer.remove(inits.pop(name))
        producers.append(encode(name, weight, node))
    nodes = producers + list(proto.graph.node)
    del proto.graph.node[:]
    proto.graph.node.extend(nodes)
    return proto


def to_weight_int8(proto: onnx.ModelProto, ops: Collection[str] = tuple(WEIGHT_INPUT),
                   above: int = INT8_WEIGHT_THRESHOLD) -> onnx.ModelProto:
    """Weight-only int8, as Core ML's int8: each Conv/Gemm/MatMul weight (of `ops`) with more than
    `above` values is stored as per-output-channel symmetric int8 feeding a DequantizeLinear; smaller
    weights, biases and every activation stay float32."""

    def encode(name: str, weight: np.ndarray, node: onnx.NodeProto) -> onnx.NodeProto:
        axis = output_axis(node)
        values, scale = quantize_per_channel(weight, axis)
        proto.graph.initializer.extend([numpy_helper.from_array(values, f"{name}_int8"),
                                        numpy_helper.from_array(scale, f"{name}_scale"),
                                        numpy_helper.from_array(np.zeros_like(values, shape=scale.shape),
                                                                f"{name}_zero_point")])
        return helper.make_node("DequantizeLinear", [f"{name}_int8", f"{name}_scale", f"{name}_zero_point"],
                                [name], axis=axis, name=f"{name}_dequantize")

    return _replace_weights(proto, ops, encode, above)


def to_weight_fp16(proto: onnx.ModelProto, ops: Collection[str]) -> onnx.ModelProto:
    """Each weight of `ops` with more than INT8_WEIGHT_THRESHOLD values stored as float16 feeding a Cast to
    float32, which onnxruntime folds once at load."""

    def encode(name: str, weight: np.ndarray, _node: onnx.NodeProto) -> onnx.NodeProto:
        proto.graph.initializer.append(numpy_helper.from_array(weight.astype(np.float16), f"{name}_fp16"))
        return helper.make_node("Cast", [f"{name}_fp16"], [name], to=onnx.TensorProto.FLOAT, name=f"{name}_cast")

    return _replace_weights(proto, ops, encode)


# float convolutions with more weights than this keep them in int8: the stride-16 pointwise convolutions
# of a PP-LCNet 0.5 (128 x 128), which the ladder's last rung keeps float, would make its file 1.02 MB in float16
FP16_CONV_WEIGHTS = 8192


def store_float_parts(proto: onnx.ModelProto) -> onnx.ModelProto:
    """The weights a w8a8 rung left float, made small: convolutions' in float16 (a DequantizeLinear'd weight
    would run on every call and keep onnxruntime's convolutions off their prepacked layouts: 1.07 ms against
    0.75 ms on the small student, docs/EXPORT.md) up to FP16_CONV_WEIGHTS values, bigger ones and the
    head's (Gemm/MatMul) in int8 (the bytes are there)."""
    proto = to_weight_int8(to_weight_int8(proto, ("Gemm", "MatMul")), ("Conv",), above=FP16_CONV_WEIGHTS)
    return to_weight_fp16(proto, ("Conv",))


class FeedReader(CalibrationDataReader):
    """onnxruntime's CalibrationDataReader protocol over a plain iterator of feeds."""

    def __init__(self, pixels: np.ndarray) -> None:
        self._feeds = calibration_feeds(pixels)

    def get_next(self) -> dict[str, np.ndarray] | None:
        return next(self._feeds, None)


def calibration_pixels(run_dir: str | Path, spec: PreprocessSpec,
                       calibration_dir: str | Path | None) -> CalibrationSets:
    """The calibration folder's sets: `--calibration`, else the run's training data."""
    return calibration_sets(calibration_folder(read_run_config(run_dir), calibration_dir), spec)


def embed_file(path: Path, pixels: np.ndarray, batch: int = 16) -> np.ndarray:
    """The `embedding` output of an ONNX file for `pixels`, on onnxruntime's CPU provider."""
    import onnxruntime as ort

    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    return np.concatenate([session.run(None, {INPUT_NAME: pixels[i:i + batch]})[0]
                           for i in range(0, len(pixels), batch)])


def float_nodes(graph: onnx.GraphProto, rung: Rung) -> list[str]:
    """The names of the nodes the rung keeps float (the graph is topologically sorted)."""
    return rung.float_parts([node.name for node in graph.node],
                            [i for i, node in enumerate(graph.node) if node.op_type == "Conv"])


@contextmanager
def root_warnings_off() -> Iterator[None]:
    """onnxruntime's quantizer warns on the root logger for every rank-1 norm weight it skips per-channel."""
    previous = logging.root.manager.disable
    logging.disable(logging.WARNING)
    try:
        yield
    finally:
        logging.disable(previous)


def _ranges_cache(quantize_static: Callable, path: Path) -> dict[str, Path]:
    """quantize_static's keyword that keeps the activation ranges of its first call in `path` for the next
    rungs (onnxruntime >= 1.32): every rung calibrates the same float graph on the same photos (the excluded
    nodes only change what is quantized), so the ladder runs the photos through it once. Older versions
    calibrate again per rung, to the same ranges."""
    return {"calibration_cache_path": path} if "calibration_cache_path" in signature(quantize_static).parameters \
        else {}


def to_w8a8(fp32_path: Path, run_dir: str | Path, spec: PreprocessSpec, calibration_dir: str | Path | None,
            workdir: Path) -> onnx.ModelProto:
    """Static QDQ: int8 per-channel weights, uint8 activations with MinMax ranges from simulated phone photos
    of the items; the head and the first convolutions keep float activations when the check asks for it
    (pocketvec.export.w8a8), their weights stored by `store_float_parts`."""
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    sets = calibration_pixels(run_dir, spec, calibration_dir)
    prepared = workdir / "prepared.onnx"
    quant_pre_process(str(fp32_path), str(prepared), skip_symbolic_shape=True)
    graph = onnx.load(str(prepared)).graph
    ranges = _ranges_cache(quantize_static, workdir / "ranges.json")

    def quantize(rung: Rung) -> Path:
        out = workdir / f"w8a8-{rung.float_convs}-{rung.float_head}.onnx"
        with root_warnings_off():
            quantize_static(str(prepared), str(out), FeedReader(sets.calibration), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8,
                            nodes_to_exclude=float_nodes(graph, rung), **ranges)
        onnx.save(store_float_parts(onnx.load(str(out))), str(out))
        return out

    chosen, result = quantize_on_ladder(quantize, lambda path: embed_file(path, sets.check),
                                        embed_file(fp32_path, sets.check), len(sets.check_photos))
    proto = onnx.load(str(chosen))
    proto.doc_string = result.describe()
    return proto
