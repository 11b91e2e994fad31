"""Compact against full local maps through the product path (issue 41): `pocketvec gallery build` (with views)
writes the tier's gallery as int8 with full and with compact local maps, each file is read back as `match` reads
it, and the tier's photos are scored as the matcher scores them (`runtime.matcher.scores`: the re-rank over
every row's stored locations). Per file: bytes per item (the file's size over its rows), Recall@1, the best
recall at precision >= 0.99 (oracle) and the decision recall (threshold + margin calibrated at 0.99 on each
item's first 40 % of photos, scored on the rest, as `pocketvec bench`).

    python experiments/compact_gallery_dev.py MODEL.onnx WORK/dev/lookalikes --out-dir OUT
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from common import calibrating, photo_numbers, query_photos

from pocketvec.bench.measure import decision_operating_point
from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.enroll import build_gallery, open_gallery
from pocketvec.runtime.gallery.update import write_new_gallery
from pocketvec.runtime.matcher import scores
from pocketvec.runtime.metrics import recall_at_k


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--out-dir", type=Path, required=True)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    args.out_dir.mkdir(parents=True, exist_ok=True)
    engine = open_engine(args.model, "auto", args.threads)
    photo_paths, photo_labels = query_photos(args.tier)
    held = calibrating(photo_numbers(photo_paths))
    photos = engine.embed_all(photo_paths, query=True)
    rerank = engine.metadata.local_rerank
    for maps in ("full", "compact"):
        path = args.out_dir / f"{args.tier.name}-int8-{maps}.pvg"
        if not path.is_file():
            gallery, _ = build_gallery(engine, args.tier / "gallery", "int8", local_maps=maps)
            write_new_gallery(path, gallery, overwrite=True)
        gallery = open_gallery(engine, path)
        similarity = scores(gallery, photos.embeddings, photos.locals, rerank)
        oracle = calibrate(similarity, photo_labels, gallery.labels, 0.99)
        decision = decision_operating_point(similarity, photo_labels, gallery.labels, held) or {}
        print(json.dumps({"maps": maps, "file": str(path), "rows": gallery.count,
                          "bytes_per_item": round(path.stat().st_size / gallery.count),
                          "recall_at_1": round(recall_at_k(similarity, photo_labels, gallery.labels, 1), 4),
                          "oracle_recall_at_p99": round(oracle.chosen.recall if oracle.target_reached else 0.0, 4),
                          "decision_recall": round(decision.get("recall", float("nan")), 4),
                          "decision_precision": round(decision.get("precision", float("nan")), 4)}), flush=True)


if __name__ == "__main__":
    main()
