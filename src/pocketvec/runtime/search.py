"""Exact top-k inner-product search over the gallery rows.

- `NumpyIndex`: float32 brute force (BLAS matmul + argpartition).
- `Int8Index`: onnxruntime's MatMulInteger (u8 x s8) scans int8 rows at near memory bandwidth,
  then the candidates are re-scored exactly against the stored rows (int8 as q . g / 127, or the
  fp32/fp16 floats). The query is quantized per row; the candidate pool widens until the
  quantization error bound (Cauchy-Schwarz) proves no row outside it can enter the top k.
- `FaissIndex`: faiss IndexFlatIP (exact), optional (`pip install pocketvec[faiss]`).
Every index returns exact scores (Q, k) sorted best first and row ids (Q, k).
"""

from __future__ import annotations

import importlib.util

import numpy as np

from pocketvec.errors import ConfigError
from pocketvec.runtime.unit_norm import dequantize, from_int8, to_int8

INDEX_CHOICES = ("auto", "numpy", "int8", "faiss")


def top_k(scores: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
    """Best k columns of each row of (Q, N) scores, best first."""
    k = min(k, scores.shape[1])
    if k < scores.shape[1]:
        part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    else:
        part = np.broadcast_to(np.arange(k), (scores.shape[0], k))
    picked = np.take_along_axis(scores, part, axis=1)
    order = np.argsort(-picked, axis=1, kind="stable")
    return np.take_along_axis(picked, order, axis=1), np.take_along_axis(part, order, axis=1)


DOT_CHUNK = 1 << 16  # rows decoded at a time


def dot_rows(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """(Q, N) float32 dot products of float32 queries with the stored rows (int8 decoded as q / 127), a chunk
    of rows at a time: the rows (a mapped file, say) are never decoded whole."""
    out = np.empty((len(queries), len(vectors)), dtype=np.float32)
    for start in range(0, len(vectors), DOT_CHUNK):
        out[:, start : start + DOT_CHUNK] = queries @ dequantize(vectors[start : start + DOT_CHUNK]).T
    return out


class NumpyIndex:
    def __init__(self, vectors: np.ndarray) -> None:
        if vectors.dtype == np.int8:
            self.vectors = from_int8(vectors)
        else:  # float32 galleries are used in place (no copy)
            self.vectors = np.ascontiguousarray(vectors, dtype=np.float32)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return top_k(np.asarray(queries, dtype=np.float32) @ self.vectors.T, k)


class Int8Index:
    """int8 scan + exact re-scoring. Float rows are quantized for the scan (a 1-byte-per-value copy)
    and re-scored against the stored floats, so the answer is the same as brute force."""

    def __init__(self, vectors: np.ndarray, threads: int = 1) -> None:
        import onnxruntime as ort

        self.vectors = vectors  # the stored rows, used for exact scores
        if vectors.dtype == np.int8:
            scan, self.gallery_error = vectors, 0.0
        else:
            scan = to_int8(vectors)
            self.gallery_error = _max_row_norm(vectors.astype(np.float32) - from_int8(scan))
        self.scan_norm = _max_row_norm(from_int8(scan))
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(_int8_graph(scan), options, providers=["CPUExecutionProvider"])

    def exact_scores(self, queries: np.ndarray, ids: np.ndarray) -> np.ndarray:
        rows = self.vectors[ids]
        rows = from_int8(rows) if rows.dtype == np.int8 else rows.astype(np.float32)
        return np.einsum("qd,qpd->qp", queries, rows)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        queries = np.asarray(queries, dtype=np.float32)
        n = len(self.vectors)
        k = min(k, n)
        step = np.maximum(np.abs(queries).max(1, keepdims=True), 1e-30) / 127.0
        quantized = np.clip(np.rint(queries / step), -127, 127)
        # |approx - exact| <= ||q - q_scan|| * max||g_scan|| + ||q|| * max||g - g_scan|| (Cauchy-Schwarz)
        error = (np.linalg.norm(queries - quantized * step, axis=1) * self.scan_norm
                 + np.linalg.norm(queries, axis=1) * self.gallery_error) * 1.0001 + 1e-6
        feed = {"query": (quantized + 128).astype(np.uint8), "step": step.astype(np.float32)}
        pool = min(n, max(256, 8 * k))  # TopK of 256 costs the same as of 32; widening rescans
        while True:
            approx, ids = self.session.run(None, {**feed, "k": np.array([pool], dtype=np.int64)})
            scores, order = top_k(self.exact_scores(queries, ids), k)
            # A row outside the pool scores at most approx[:, -1] + error exactly.
            if pool == n or np.all(approx[:, -1] + error < scores[:, -1]):
                return scores, np.take_along_axis(ids, order, axis=1)
            pool = min(n, pool * 8)


def _max_row_norm(rows: np.ndarray, chunk: int = 65536) -> float:
    norms = [np.sqrt((rows[s : s + chunk] ** 2).sum(1)).max() for s in range(0, len(rows), chunk)]
    return float(max(norms, default=0.0))


def _int8_graph(vectors: np.ndarray) -> bytes:
    from onnx import TensorProto, helper, numpy_helper

    # approx score = (q_int . g_int) * step / 127, where q ~ q_int * step and g ~ g_int / 127.
    nodes = [
        helper.make_node("MatMulInteger", ["query", "gallery", "zero"], ["dots"]),
        helper.make_node("Cast", ["dots"], ["dots_f"], to=TensorProto.FLOAT),
        helper.make_node("Mul", ["step", "inv127"], ["scale"]),
        helper.make_node("Mul", ["dots_f", "scale"], ["scores"]),
        helper.make_node("TopK", ["scores", "k"], ["values", "indices"], axis=1, largest=1, sorted=1),
    ]
    inputs = [helper.make_tensor_value_info("query", TensorProto.UINT8, ["q", vectors.shape[1]]),
              helper.make_tensor_value_info("step", TensorProto.FLOAT, ["q", 1]),
              helper.make_tensor_value_info("k", TensorProto.INT64, [1])]
    outputs = [helper.make_tensor_value_info("values", TensorProto.FLOAT, ["q", "k"]),
               helper.make_tensor_value_info("indices", TensorProto.INT64, ["q", "k"])]
    init = [numpy_helper.from_array(np.ascontiguousarray(vectors.T), "gallery"),
            numpy_helper.from_array(np.array(128, dtype=np.uint8), "zero"),
            numpy_helper.from_array(np.array(1 / 127, dtype=np.float32), "inv127")]
    graph = helper.make_graph(nodes, "pocketvec_int8_search", inputs, outputs, init)
    return helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)]).SerializeToString()


class FaissIndex:
    def __init__(self, vectors: np.ndarray) -> None:
        try:
            import faiss
        except ImportError as e:
            raise ConfigError("the faiss index needs faiss: pip install 'pocketvec[faiss]'") from e
        floats = NumpyIndex(vectors).vectors
        self.index = faiss.IndexFlatIP(floats.shape[1])
        self.index.add(floats)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids


AUTO_SCAN_ROWS = 20_000  # from here on the int8 scan beats a float32 matmul
SCAN_MAX_BYTES = 1_900_000_000  # the scan's rows travel inside an ONNX protobuf (2 GB limit)


def make_index(vectors: np.ndarray, kind: str = "auto"):
    """`auto`: numpy brute force for small galleries, the int8 scan (exact re-scoring) from
    AUTO_SCAN_ROWS rows on or for any int8 gallery, faiss (if installed) past the scan's size limit."""
    if kind not in INDEX_CHOICES:
        raise ConfigError(f"index must be one of {list(INDEX_CHOICES)}. Got {kind!r}.")
    if kind == "int8" and vectors.size > SCAN_MAX_BYTES:
        raise ConfigError(f"the int8 scan holds at most {SCAN_MAX_BYTES:,} values. Got {vectors.size:,}; "
                          "use index='faiss' (pip install 'pocketvec[faiss]') or 'numpy'.")
    if kind == "auto":
        kind = "int8" if vectors.dtype == np.int8 or len(vectors) >= AUTO_SCAN_ROWS else "numpy"
        if kind == "int8" and vectors.size > SCAN_MAX_BYTES:
            kind = "faiss" if importlib.util.find_spec("faiss") else "numpy"
    return {"numpy": NumpyIndex, "int8": Int8Index, "faiss": FaissIndex}[kind](vectors)
