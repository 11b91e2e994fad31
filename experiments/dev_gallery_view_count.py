"""How many simulated photos per gallery row pay: Recall@1 and decision recall by view count, on a *dev* tier,
through the product path (`gallery build`'s rows, the matcher's scores with the local re-rank, the accept rule
calibrated for precision 0.99 on the tier's calibration photos and scored on its queries, as `pocketvec bench`
scores a tier). One exported model; the photos are embedded once, the gallery built once per count.

    python experiments/dev_gallery_view_count.py MODEL.onnx WORK/dev/lookalikes [--counts 8,4,2,0] [--out results.json]

WORK/dev/lookalikes is a tier built by `pocketvec bench --split dev` (gallery/, queries/, calibration/).
Printed text is not read (the embedding alone decides). Each count after the first is also compared with the
first photo by photo: the Recall@1 difference with a 95 % paired bootstrap interval over the photos.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
from common import query_photos

from pocketvec.bench.measure import decision_operating_point
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.enroll import build_gallery, embed_labelled
from pocketvec.runtime.gallery.views import GalleryViews
from pocketvec.runtime.matcher import scores
from pocketvec.runtime.metrics import best_two, recall_at_k

BOOTSTRAP = 2000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--counts", default="8,4,2,0", help="simulated photos per item, comma-separated")
    parser.add_argument("--threads", type=int, default=2, help="inference threads")
    parser.add_argument("--out", type=Path)
    args = parser.parse_args()
    engine = open_engine(args.model, "auto", args.threads)
    rerank = engine.metadata.local_rerank
    paths, query_labels = query_photos(args.tier)
    photos = engine.embed_all(paths, query=True)
    calibration = embed_labelled(engine, args.tier / "calibration", layout="folders", query=True)
    rows, first_hits = [], None
    for count in (int(c) for c in args.counts.split(",")):
        start = time.perf_counter()
        gallery, _ = build_gallery(engine, args.tier / "gallery", views=GalleryViews(count=count))
        seconds = time.perf_counter() - start
        on_dev = scores(gallery, photos.embeddings, photos.locals, rerank)
        calibrating = (scores(gallery, calibration.embeddings, calibration.locals, rerank), calibration.labels)
        decision = decision_operating_point(on_dev, query_labels, gallery.labels, calibrating) or {}
        row = {"views": count, "items": gallery.count, "queries": len(query_labels),
               "calibration_photos": len(calibration.labels), "build_s": round(seconds, 1),
               "recall_at_1": recall_at_k(on_dev, query_labels, gallery.labels, 1),
               "decision_recall": decision.get("recall"), "decision_precision": decision.get("precision"),
               "threshold": decision.get("threshold"), "margin": decision.get("margin")}
        hits = best_two(on_dev, gallery.labels)[0] == np.asarray(query_labels)
        if first_hits is None:
            first_hits = hits
        else:
            row["recall_at_1_change"] = paired_interval(hits, first_hits)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


def paired_interval(hits: np.ndarray, reference: np.ndarray) -> dict[str, float]:
    """Mean of hits - reference over the photos, with a 95 % bootstrap interval (photos resampled, seed 0)."""
    change = hits.astype(np.float64) - reference.astype(np.float64)
    draws = np.random.default_rng(0).integers(0, len(change), (BOOTSTRAP, len(change)))
    low, high = np.percentile(change[draws].mean(axis=1), [2.5, 97.5])
    return {"mean": float(change.mean()), "low": float(low), "high": float(high),
            "photos_gained": int((change > 0).sum()), "photos_lost": int((change < 0).sum())}


if __name__ == "__main__":
    main()
