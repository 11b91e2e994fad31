"""The weights a w8a8 rung leaves float: small convolutions in float16, big ones and the head in int8."""

from __future__ import annotations

import numpy as np
import onnx
import onnxruntime as ort
from onnx import TensorProto, helper, numpy_helper

from pocketvec.export.onnx_quantize import FP16_CONV_WEIGHTS, store_float_parts


def _model(rng: np.random.Generator) -> onnx.ModelProto:
    """pixels (1, 64, 8, 8) -> 1x1 conv 64 -> 64 (4,096 weights) -> 1x1 conv 64 -> 160 (10,240) -> MatMul."""
    small = rng.normal(size=(64, 64, 1, 1)).astype(np.float32) / 8
    big = rng.normal(size=(160, 64, 1, 1)).astype(np.float32) / 8
    head = rng.normal(size=(160 * 64, 4)).astype(np.float32) / 100
    assert small.size <= FP16_CONV_WEIGHTS < big.size
    nodes = [helper.make_node("Conv", ["x", "small"], ["a"], name="small_conv"),
             helper.make_node("Conv", ["a", "big"], ["b"], name="big_conv"),
             helper.make_node("Reshape", ["b", "shape"], ["flat"], name="flatten"),
             helper.make_node("MatMul", ["flat", "head"], ["y"], name="head")]
    inits = [numpy_helper.from_array(small, "small"), numpy_helper.from_array(big, "big"),
             numpy_helper.from_array(head, "head"), numpy_helper.from_array(np.array([1, -1], np.int64), "shape")]
    graph = helper.make_graph(nodes, "g", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 64, 8, 8])],
                              [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 4])], inits)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])


def _run(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(None, {"x": x})[0]


def test_small_convolutions_keep_float16_weights_and_big_ones_int8() -> None:
    rng = np.random.default_rng(0)
    model, x = _model(rng), rng.normal(size=(1, 64, 8, 8)).astype(np.float32)
    expected = _run(model, x)
    stored = store_float_parts(_model(np.random.default_rng(0)))
    producers = {node.output[0]: node.op_type for node in stored.graph.node}
    assert (producers["small"], producers["big"], producers["head"]) == ("Cast", "DequantizeLinear", "DequantizeLinear")
    dtypes = {t.name: t.data_type for t in stored.graph.initializer}
    assert dtypes["small_fp16"] == TensorProto.FLOAT16 and dtypes["big_int8"] == TensorProto.INT8
    onnx.checker.check_model(stored)
    out = _run(stored, x)
    cosine = float((out * expected).sum() / np.linalg.norm(out) / np.linalg.norm(expected))
    assert cosine > 0.999, cosine
