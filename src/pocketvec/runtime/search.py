"""Top-k inner-product search over the gallery rows, and the exact cosines every answer is scored with.

`exact_dots` is the one cosine the matcher, calibration and evaluation report: each row's products summed in a
fixed order, so a row scores the same bits whichever rows or queries it is computed with (a BLAS matmul does
not: its kernels sum in an order that depends on the matrix shapes). The indexes find candidate rows; their own
scores differ from `exact_dots` by at most `score_error`.

- `NumpyIndex`: float32 brute force (BLAS matmul + argpartition).
- `Int8Index`: onnxruntime's MatMulInteger (u8 x s8) scans int8 rows at near memory bandwidth,
  then the candidates are re-scored exactly against the stored rows (int8 as q . g / 127, or the
  fp32/fp16 floats). The query is quantized per row; the candidate pool widens until the
  quantization error bound (Cauchy-Schwarz) proves no row outside it can enter the top k.
- `FaissIndex`: faiss IndexFlatIP (exact), optional (`pip install pocketvec[faiss]`).
- `IvfPqIndex`: faiss IndexIVFPQ (approximate: product-quantized rows in `nprobe` of `nlist` cells), trained on
  the gallery's rows; the matcher re-scores its candidates exactly.
Every index returns scores (Q, k) sorted best first and row ids (Q, k) (-1 past the rows it found); `exact`
says whether the k rows are the true top k (up to `score_error`).
"""

from __future__ import annotations

import importlib.util
from typing import Protocol

import numpy as np

from pocketvec.errors import ConfigError
from pocketvec.runtime.unit_norm import dequantize, from_int8, to_int8

INDEX_CHOICES = ("auto", "numpy", "int8", "faiss", "ivfpq")
UNIT_ROW_NORM = 2.0  # a generous bound on a stored row's norm (unit within 1e-2; int8 rounding adds < 0.07)


class SearchIndex(Protocol):
    exact: bool  # the k rows returned are the true top k (their scores within score_error of exact_dots)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]: ...


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


DOT_VALUES = 1 << 22  # float32 products held at a time by `dot_rows`


def exact_dots(queries: np.ndarray, rows: np.ndarray) -> np.ndarray:
    """(Q, n) float32 dot products of float32 queries with stored rows (int8 decoded as q / 127): each product
    rounded, then summed along the row by numpy's pairwise sum, an order fixed by the dimension alone. The same
    query and row give the same bits whatever else is computed with them."""
    q = np.ascontiguousarray(queries, dtype=np.float32)
    r = np.ascontiguousarray(dequantize(np.asarray(rows)))
    return (q[:, None, :] * r[None, :, :]).sum(axis=2, dtype=np.float32)


def dot_rows(queries: np.ndarray, vectors: np.ndarray) -> np.ndarray:
    """`exact_dots` of the queries with every stored row, a chunk of rows at a time: the rows (a mapped file,
    say) are never decoded whole."""
    out = np.empty((len(queries), len(vectors)), dtype=np.float32)
    step = max(1, DOT_VALUES // max(1, len(queries) * vectors.shape[1]))
    for start in range(0, len(vectors), step):
        out[:, start : start + step] = exact_dots(queries, vectors[start : start + step])
    return out


def score_error(queries: np.ndarray) -> np.ndarray:
    """(Q,) a bound on how far two float32 dot products of a query with one row (an index's and `exact_dots`)
    can differ: twice the float32 rounding bound of a sum of `dim` products, for rows of norm <= UNIT_ROW_NORM."""
    dim = queries.shape[1]
    gamma = dim * 2.0**-24 / (1 - dim * 2.0**-24)
    return 2 * gamma * np.linalg.norm(queries, axis=1) * UNIT_ROW_NORM

class NumpyIndex:
    exact = True

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

    exact = True

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
        self.pool = 256  # rows the next search asks the scan for (then x8 until the top k is proven)

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
        # TopK of 256 costs the same as of 32; widening rescans, so start where the last search ended
        pool = min(n, max(self.pool, 8 * k))
        while True:
            approx, ids = self.session.run(None, {**feed, "k": np.array([pool], dtype=np.int64)})
            found = [self._rescored(queries[q : q + 1], approx[q], ids[q], error[q], k) for q in range(len(queries))]
            scores, rows = np.concatenate([f[0] for f in found]), np.concatenate([f[1] for f in found])
            # A row outside the pool scores at most approx[:, -1] + error exactly.
            if pool == n or np.all(approx[:, -1] + error < scores[:, -1]):
                self.pool = max(self.pool, pool)
                return scores, rows
            pool = min(n, pool * 8)

    def _rescored(self, query: np.ndarray, approx: np.ndarray, ids: np.ndarray, error: float,
                  k: int) -> tuple[np.ndarray, np.ndarray]:
        """The exact top k of one query's pool (approx best first): only the rows whose approximate score
        lets them reach the k-th best exact score of the first k rows are scored exactly."""
        first = self.exact_scores(query, ids[None, :k])[0]
        reach = int(np.searchsorted(-approx, -(first.min() - error), side="right"))
        exact = np.concatenate([first, self.exact_scores(query, ids[None, k:reach])[0]]) if reach > k else first
        scores, order = top_k(exact[None], k)
        return scores, ids[None, order[0]]


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


def _faiss():
    try:
        import faiss
    except ImportError as e:
        raise ConfigError("the faiss index needs faiss: pip install 'pocketvec[faiss]'") from e
    return faiss


class FaissIndex:
    exact = True

    def __init__(self, vectors: np.ndarray) -> None:
        faiss = _faiss()
        floats = NumpyIndex(vectors).vectors
        self.index = faiss.IndexFlatIP(floats.shape[1])
        self.index.add(floats)

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        scores, ids = self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)
        return scores, ids


class IvfPqIndex:
    """faiss IndexIVFPQ, inner product: the rows clustered into `nlist` cells (k-means on the gallery's own rows)
    and stored as `m` one-byte codes each; a search visits the `nprobe` cells nearest the query. Approximate:
    a row in a cell it does not visit is not found. Defaults: nlist = 4 sqrt(N) (at most N / 39, the rows
    k-means needs per cell), m = dim / 8 (8 values per code)."""

    exact = False

    def __init__(self, vectors: np.ndarray, nprobe: int = 16, nlist: int | None = None, m: int | None = None,
                 seed: int = 0) -> None:
        faiss = _faiss()
        floats = NumpyIndex(vectors).vectors
        n, dim = floats.shape
        self.nlist = nlist or max(1, min(int(4 * np.sqrt(n)), n // 39))
        self.m = m or max(1, dim // 8)
        if dim % self.m:
            raise ConfigError(f"ivfpq: m={self.m} code bytes must divide the {dim} values of a row")
        bits = 8 if n >= 39 * 256 else max(1, int(np.log2(max(2, n // 39))))  # k-means needs 39 rows per centroid
        self.quantizer = faiss.IndexFlatIP(dim)
        self.index = faiss.IndexIVFPQ(self.quantizer, dim, self.nlist, self.m, bits, faiss.METRIC_INNER_PRODUCT)
        self.index.cp.seed = seed
        self.index.pq.cp.seed = seed
        self.index.train(floats)
        self.index.add(floats)
        self.nprobe = nprobe

    @property
    def nprobe(self) -> int:
        return int(self.index.nprobe)

    @nprobe.setter
    def nprobe(self, value: int) -> None:
        self.index.nprobe = int(min(max(1, value), self.nlist))

    def search(self, queries: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        return self.index.search(np.ascontiguousarray(queries, dtype=np.float32), k)


AUTO_SCAN_ROWS = 20_000  # from here on the int8 scan beats a float32 matmul
SCAN_MAX_BYTES = 1_900_000_000  # the scan's rows travel inside an ONNX protobuf (2 GB limit)


def make_index(vectors: np.ndarray, kind: str = "auto"):
    """`auto`: numpy brute force for small galleries, the int8 scan (exact re-scoring) from
    AUTO_SCAN_ROWS rows on or for any int8 gallery, faiss (if installed) past the scan's size limit.
    `ivfpq`: IvfPqIndex with its defaults (approximate; construct one to choose nprobe)."""
    if kind not in INDEX_CHOICES:
        raise ConfigError(f"index must be one of {list(INDEX_CHOICES)}. Got {kind!r}.")
    if kind == "int8" and vectors.size > SCAN_MAX_BYTES:
        raise ConfigError(f"the int8 scan holds at most {SCAN_MAX_BYTES:,} values. Got {vectors.size:,}; "
                          "use index='faiss' (pip install 'pocketvec[faiss]') or 'numpy'.")
    if kind == "auto":
        kind = "int8" if vectors.dtype == np.int8 or len(vectors) >= AUTO_SCAN_ROWS else "numpy"
        if kind == "int8" and vectors.size > SCAN_MAX_BYTES:
            kind = "faiss" if importlib.util.find_spec("faiss") else "numpy"
    return {"numpy": NumpyIndex, "int8": Int8Index, "faiss": FaissIndex, "ivfpq": IvfPqIndex}[kind](vectors)
