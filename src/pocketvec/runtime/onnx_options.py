"""onnxruntime session options for an exported ONNX file.

A weight-only int8 file (int8 initializers -> DequantizeLinear -> Conv/Gemm, float activations)
keeps its 4x smaller file, but onnxruntime by default leaves the DequantizeLinear nodes in the graph
(waiting for QDQ fusions that need quantized activations) and runs them on every call, which also keeps
its fast convolution layouts from using the weights: measured 2x slower than fp32 on Lite0. With QDQ
optimizations off, onnxruntime folds those weights to float once at load and runs at fp32 speed
(same outputs). Static QDQ (w8a8) files keep the default: their QDQ fusions are the point.
"""

from __future__ import annotations

from pathlib import Path

FOLD_WEIGHTS_OPTION = "session.disable_quant_qdq"


def onnx_op_types(path: str | Path) -> set[str]:
    import onnx

    return {node.op_type for node in onnx.load(str(path), load_external_data=False).graph.node}


def is_weight_only_int8(op_types: set[str]) -> bool:
    return "DequantizeLinear" in op_types and "QuantizeLinear" not in op_types


def session_options(path: str | Path, threads: int | None = None):
    """SessionOptions for `path`: `threads` intra-op threads (1 inter-op), int8 weights folded at load."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.log_severity_level = 3
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        weight_only = is_weight_only_int8(onnx_op_types(path))
    except Exception:  # not a readable ONNX file: onnxruntime's own load reports it
        weight_only = False
    if weight_only:
        options.add_session_config_entry(FOLD_WEIGHTS_OPTION, "1")
    return options
