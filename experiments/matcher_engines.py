"""Matcher latency and agreement by index on one gallery file: the exact int8 scan, faiss IVF-PQ at several
nprobe, and (optionally) a Qdrant collection in the client's in-process mode, all with the local re-rank on.

Each index feeds the same Matcher (candidates -> exact cosines -> re-rank -> labels); the reference is the exact
int8 scan (whose answers are every row's). Agreement: the share of queries whose answer (best label) and whose
whole top-3 (labels and scores) equal the reference's; candidate recall: the share of the reference's re-ranked
labels among those the index's candidates hold. Queries: gallery rows with noise, as `bench scale` makes them.
One thread (set OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 before running).

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 PYTHONPATH=src python experiments/matcher_engines.py GALLERY.pvg \
        --rerank '{"locations": 196, "channels": 112, "top_k": 5, "weight": 4.0}' --queries 200 --nprobe 8,32,128
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np

from pocketvec.bench.scale_probe import make_queries
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.local_rerank import LocalRerank
from pocketvec.runtime.matcher import Matcher
from pocketvec.runtime.search import IvfPqIndex, make_index


def timed_matches(matcher: Matcher, vectors: np.ndarray, maps: np.ndarray) -> tuple[list, list[float]]:
    matcher.match(vectors[:1], 3, maps[:1])  # warm-up
    matches, latencies = [], []
    for q in range(len(vectors)):
        start = time.perf_counter()
        matches.append(matcher.match(vectors[q : q + 1], 3, maps[q : q + 1])[0])
        latencies.append((time.perf_counter() - start) * 1e3)
    return matches, latencies


def candidate_labels(matcher: Matcher, vectors: np.ndarray, needed: int) -> list[set[str]]:
    """The labels of each query's candidate rows."""
    pools = matcher.candidates(vectors, needed)
    return [{matcher.labels[i] for i in matcher.scorer.row_label[rows]} for rows, _ in pools]


def row(name: str, build_s: float, matches: list, latencies: list[float], reference: list, recall: float) -> dict:
    pairs = list(zip(matches, reference, strict=True))
    return {"index": name, "build_s": round(build_s, 1), "median_ms": round(float(np.median(latencies)), 2),
            "p99_ms": round(float(np.percentile(latencies, 99)), 2),
            "same_answer": float(np.mean([m.top[0][0] == r.top[0][0] for m, r in pairs])),
            "same_top3": float(np.mean([m.to_dict() == r.to_dict() for m, r in pairs])),
            "candidate_recall": round(recall, 4)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gallery", type=Path)
    parser.add_argument("--rerank", required=True, help="the model's local re-rank as JSON")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--nprobe", default="8,32,128")
    parser.add_argument("--qdrant", action="store_true", help="also a Qdrant collection (in-process mode)")
    args = parser.parse_args()
    rerank = LocalRerank.from_dict(json.loads(args.rerank))
    start = time.perf_counter()
    gallery = Gallery.load(args.gallery)
    print(json.dumps({"gallery": str(args.gallery), "rows": gallery.count, "dtype": gallery.dtype,
                      "open_s": round(time.perf_counter() - start, 1)}), flush=True)
    vectors, maps = make_queries(gallery, args.queries, np.random.default_rng(0))
    start = time.perf_counter()
    exact = Matcher(gallery, local_rerank=rerank, index=make_index(gallery.vectors, "int8"))
    built = time.perf_counter() - start
    reference, latencies = timed_matches(exact, vectors, maps)
    wanted = [{label for label, _ in m.top} for m in exact.match(vectors, rerank.top_k, maps)]  # the re-ranked labels
    print(json.dumps(row("int8 scan (exact)", built, reference, latencies, reference, 1.0)), flush=True)
    start = time.perf_counter()
    ivf = IvfPqIndex(gallery.vectors)
    built = time.perf_counter() - start
    for nprobe in (int(n) for n in args.nprobe.split(",")):
        ivf.nprobe = nprobe
        matcher = Matcher(gallery, local_rerank=rerank, index=ivf)
        matches, latencies = timed_matches(matcher, vectors, maps)
        got = candidate_labels(matcher, vectors, rerank.top_k)
        recall = np.mean([len(w & g) / len(w) for w, g in zip(wanted, got, strict=True)])
        name = f"faiss IVF-PQ nlist {ivf.nlist}, m {ivf.m}, nprobe {ivf.nprobe}"
        print(json.dumps(row(name, built, matches, latencies, reference, float(recall))), flush=True)
    if args.qdrant:
        from qdrant_client import QdrantClient

        from pocketvec.runtime.vector_store import QdrantIndex

        start = time.perf_counter()
        index = QdrantIndex.upload(gallery, QdrantClient(":memory:"), "gallery", exact=True)
        built = time.perf_counter() - start
        matches, latencies = timed_matches(Matcher(gallery, local_rerank=rerank, index=index), vectors, maps)
        print(json.dumps(row("Qdrant in-process (exact search)", built, matches, latencies, reference, 1.0)),
              flush=True)


if __name__ == "__main__":
    main()
