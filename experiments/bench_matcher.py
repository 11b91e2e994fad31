"""Matcher speed on one core: pocketvec's matcher vs plain numpy brute force vs faiss, side by side.

Galleries of random unit vectors (256-d) stored as fp32 and int8; queries are noisy copies of
gallery rows (a photo of an enrolled item). One query at a time (batch 1), top-5 labels. The
methods are interleaved query by query so that machine noise falls on all of them alike.

Run (one core, as in docs/RUNTIME.md):
    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 PYTHONPATH=src \\
        python experiments/bench_matcher.py --sizes 100000 1000000 --queries 50
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
from collections.abc import Callable

import numpy as np

from pocketvec.runtime.gallery import Gallery, quantize
from pocketvec.runtime.matcher import Matcher
from pocketvec.runtime.metadata import AcceptRule
from pocketvec.runtime.search import top_k

DIM, TOP_K = 256, 5


def unit_rows(rng: np.random.Generator, n: int, dim: int) -> np.ndarray:
    out = np.empty((n, dim), dtype=np.float32)
    for start in range(0, n, 100_000):  # in chunks: 1M x 256 float64 would need 2 GB
        block = rng.standard_normal((min(100_000, n - start), dim), dtype=np.float32)
        out[start : start + len(block)] = block / np.linalg.norm(block, axis=1, keepdims=True)
    return out


def numpy_fp32(rows: np.ndarray) -> Callable[[np.ndarray], np.ndarray]:
    return lambda q: top_k(q @ rows.T, TOP_K)[1]


def numpy_int8(rows8: np.ndarray, chunk: int = 32768) -> Callable[[np.ndarray], np.ndarray]:
    """Plain numpy on the int8 rows: dequantize a chunk at a time (numpy has no int8 BLAS)."""
    def search(q: np.ndarray) -> np.ndarray:
        scores = np.empty((1, len(rows8)), dtype=np.float32)
        for s in range(0, len(rows8), chunk):
            scores[:, s : s + chunk] = q @ rows8[s : s + chunk].astype(np.float32).T
        return top_k(scores / 127, TOP_K)[1]
    return search


def faiss_index(rows: np.ndarray, int8: bool):
    import faiss

    faiss.omp_set_num_threads(1)
    if int8:
        index = faiss.IndexScalarQuantizer(DIM, faiss.ScalarQuantizer.QT_8bit, faiss.METRIC_INNER_PRODUCT)
        index.train(rows[:100_000])
    else:
        index = faiss.IndexFlatIP(DIM)
    index.add(rows)
    return lambda q: index.search(q, TOP_K)[1]


def top_ids(matcher: Matcher, q: np.ndarray) -> list[int]:
    """The matcher's top-5 labels as row ids (labels here are the row numbers)."""
    return [[int(label) for label, _ in matcher.match(q, TOP_K)[0].top]]


def baselines(gallery: Gallery, rows: np.ndarray, storage: str, faiss: bool) -> dict[str, Callable]:
    """The methods the matcher is compared with, for one storage type."""
    if storage == "float32":
        plain = Matcher(gallery, AcceptRule(0.5, 0.05), index="numpy")
        methods = {"pocketvec matcher, index=numpy": lambda q, m=plain: top_ids(m, q),
                   "plain numpy brute force": numpy_fp32(rows)}
    else:
        methods = {"plain numpy brute force (chunked dequantize)": numpy_int8(gallery.vectors)}
    if faiss:
        name = "faiss IndexFlatIP" if storage == "float32" else "faiss IndexScalarQuantizer QT_8bit"
        methods[name] = faiss_index(rows, storage == "int8")
    return methods


def measure(methods: dict[str, Callable], queries: np.ndarray, warmup: int = 3) -> dict[str, list[float]]:
    for fn in methods.values():
        for q in queries[:warmup]:
            fn(q[None])
    times: dict[str, list[float]] = {name: [] for name in methods}
    for q in queries:
        for name, fn in methods.items():  # interleaved: noise is shared
            start = time.perf_counter()
            fn(q[None])
            times[name].append(time.perf_counter() - start)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000])
    parser.add_argument("--queries", type=int, default=50)
    parser.add_argument("--no-faiss", action="store_true")
    parser.add_argument("--only-matcher", action="store_true", help="time the matcher alone (int8 storage)")
    args = parser.parse_args()
    rng = np.random.default_rng(0)
    print(f"machine: {platform.processor() or platform.machine()}, numpy {np.__version__}; "
          f"{DIM}-d, top-{TOP_K}, batch 1, {args.queries} queries; min / median / p90 latency")
    print("| items | storage | method | min ms | median ms | p90 ms | queries/s | same top-5 as exact |")
    print("|---:|---|---|---:|---:|---:|---:|---:|")
    for n in args.sizes:
        rows = unit_rows(rng, n, DIM)
        picks = rng.integers(0, n, args.queries)
        queries = rows[picks] + 0.04 * rng.standard_normal((args.queries, DIM), dtype=np.float32)
        queries /= np.linalg.norm(queries, axis=1, keepdims=True)
        labels = [str(i) for i in range(n)]
        for storage in ("int8",) if args.only_matcher else ("float32", "int8"):
            gallery = Gallery("bench", DIM, storage, labels=labels, sources=labels, vectors=quantize(rows, storage))
            matcher = Matcher(gallery, AcceptRule(0.5, 0.05))  # index="auto": the int8 scan at this size
            methods = {"pocketvec matcher (int8 scan + exact re-score)": lambda q, m=matcher: top_ids(m, q)}
            if not args.only_matcher:
                methods.update(baselines(gallery, rows, storage, faiss=not args.no_faiss))
            exact = numpy_fp32(gallery.embeddings())
            truth = [list(exact(q[None])[0]) for q in queries]
            times = measure(methods, queries)
            for name, ts in times.items():
                agree = np.mean([list(methods[name](q[None])[0]) == t for q, t in zip(queries, truth, strict=True)])
                ms = np.array(ts) * 1e3
                print(f"| {n:,} | {storage} | {name} | {ms.min():.2f} | {np.median(ms):.2f} | "
                      f"{np.percentile(ms, 90):.2f} | {1000 / ms.mean():.0f} | {agree:.0%} |", flush=True)
            del methods, matcher, gallery, exact
            gc.collect()
        del rows


if __name__ == "__main__":
    main()
