"""One fresh process that opens a gallery the public way, matches queries one at a time the way
`Recognizer.match` does after embedding (`Matcher.for_model(...).match`: the global top labels, re-ranked by
the local maps when the model has them), and reports the latencies and its resident memory as one JSON line.

Run by `pocketvec bench scale` (pocketvec.bench.scale) with one BLAS / OpenMP thread:
    python -m pocketvec.bench.scale_probe GALLERY.pvg --rerank-file rerank.json --queries 200
The queries are rows of the gallery with noise added (their local maps likewise, a compact row's decoded
locations in the first of the photo map's), so each has a near row.
"""

from __future__ import annotations

import argparse
import json
import resource
import sys
import time
from pathlib import Path

import numpy as np

from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery.coded import Decoder
from pocketvec.runtime.local_rerank import LocalRerank
from pocketvec.runtime.matcher import Matcher
from pocketvec.runtime.unit_norm import dequantize, unit_rows

QUERY_NOISE = 0.5  # noise / signal per value: a query near its row, not on it


def memory() -> dict[str, int]:
    """Resident and peak resident bytes of this process (Linux /proc; elsewhere the peak alone)."""
    status = Path("/proc/self/status")
    if status.is_file():
        fields = dict(line.split(":", 1) for line in status.read_text().splitlines() if ":" in line)
        return {"rss": int(fields["VmRSS"].split()[0]) * 1024, "peak": int(fields["VmHWM"].split()[0]) * 1024}
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * (1 if sys.platform == "darwin" else 1024)
    return {"rss": peak, "peak": peak}


def make_queries(gallery: Gallery, count: int, rng: np.random.Generator,
                 decoder: Decoder | None = None) -> tuple[np.ndarray, np.ndarray | None]:
    """`count` query embeddings (and local maps) near random rows of the gallery (`decoder`: a compact
    gallery's rows decoded)."""
    rows = rng.integers(0, gallery.count, count)
    base = dequantize(gallery.vectors[rows])  # only these rows: a float copy of them all would cost memory
    noise = rng.standard_normal(base.shape).astype(np.float32) / np.sqrt(base.shape[1])
    queries = unit_rows(base + QUERY_NOISE * noise)
    if gallery.locals is None:
        return queries, None
    if gallery.compact:
        maps = rng.standard_normal((count, *gallery.local_shape)).astype(np.float32)
        for map_, decoded in zip(maps, decoder[rows], strict=True):
            map_[: len(decoded)] = decoded * np.sqrt(gallery.local_shape[1])
    else:
        maps = gallery.locals[rows].astype(np.float32)
    noise = rng.standard_normal(maps.shape).astype(np.float32) / np.sqrt(maps.shape[2])
    return queries, unit_rows(maps + QUERY_NOISE * noise)


def probe(path: Path, rerank: LocalRerank | None, queries: int, top_k: int, seed: int) -> dict:
    before = memory()
    start = time.perf_counter()
    gallery = Gallery.load(path)
    matcher = Matcher(gallery, local_rerank=rerank)  # = Matcher.for_model for a model with this re-rank
    open_s = time.perf_counter() - start
    opened = memory()
    vectors, maps = make_queries(gallery, queries, np.random.default_rng(seed), matcher.scorer.maps)
    latencies = []
    for q in range(queries):
        start = time.perf_counter()
        matcher.match(vectors[q : q + 1], top_k, None if maps is None else maps[q : q + 1])
        latencies.append((time.perf_counter() - start) * 1e3)
    after = memory()
    return {"rows": gallery.count, "open_s": open_s, "latencies_ms": latencies, "rss_before": before["rss"],
            "rss_opened": opened["rss"], "rss": after["rss"], "peak": after["peak"]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("gallery", type=Path)
    parser.add_argument("--rerank-file", type=Path,
                        help="the model's local re-rank as a JSON file (none: plain cosine matching)")
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--top-k", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    rerank = LocalRerank.from_dict(json.loads(args.rerank_file.read_text())) if args.rerank_file else None
    print(json.dumps(probe(args.gallery, rerank, args.queries, args.top_k, args.seed)))


if __name__ == "__main__":
    main()
