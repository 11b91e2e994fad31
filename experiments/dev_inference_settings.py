"""Inference-time settings chosen on the benchmark's *dev* split: the gallery-view blend, the re-rank weight and
the photos the accept rule is calibrated on. One exported model, embedded once; every setting re-scored.

    python experiments/dev_inference_settings.py MODEL.onnx WORK/dev/lookalikes [--out results.json]

WORK/dev/lookalikes is a tier built by `pocketvec bench --split dev` (gallery/, queries/, calibration/).
Reported per setting, on the dev photos: Recall@1, the best recall at precision >= 0.99 (oracle), and the
precision / recall of the rule calibrated (target 0.99) on (a) `calibration/` (the bench's `data photos`)
and (b) 4 validation-simulator photos per item.
"""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
from common import applied, calibration_photos, gallery_items, parse_model_and_tier, query_photos

from pocketvec.data.validation_sim import validation_photos
from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.gallery.views import GalleryViews, blend_views, view_photos
from pocketvec.runtime.images import content_hash, load_image
from pocketvec.runtime.local_rerank import label_ids, rerank
from pocketvec.runtime.metrics import recall_at_k

VIEWS = GalleryViews()


def main() -> None:
    args = parse_model_and_tier(__doc__)
    engine = open_engine(args.model, "auto", 2)
    size = engine.metadata.preprocess.input_size
    paths, labels = gallery_items(args.tier)
    items = engine.embed_all(paths)
    views = np.stack([engine.embed(view_photos(load_image(p), content_hash(p), VIEWS, size), query=True)
                      for p in paths])
    queries, query_labels = query_photos(args.tier)
    photos = engine.embed_all(queries, query=True)
    cal_paths, cal_labels = calibration_photos(args.tier, labels)
    calibration = {"data photos": (engine.embed_all(cal_paths, query=True), cal_labels)}
    val = [photo for p, label in zip(paths, labels, strict=True)
           for photo in validation_photos(load_image(p), label, 4)]
    val_labels = [label for label in labels for _ in range(4)]
    calibration["validation photos"] = (engine.embed_all(val, query=True), val_labels)
    ids, base = label_ids(labels), engine.metadata.local_rerank
    rows = []
    for clean_weight in (0.3, 0.5, 0.7, 1.0):
        gallery = blend_views(items.embeddings, views, clean_weight)
        for weight in (0.0, 2.0, 4.0, 6.0, 8.0):
            config = replace(base, weight=weight)

            def scores(found) -> np.ndarray:
                return rerank(found.embeddings @ gallery.T, ids, found.locals, items.locals, config)  # noqa: B023

            on_dev = scores(photos)
            oracle = calibrate(on_dev, query_labels, labels, 0.99)
            row = {"clean_weight": clean_weight, "rerank_weight": weight,
                   "recall_at_1": recall_at_k(on_dev, query_labels, labels, 1),
                   "oracle_recall_at_p99": oracle.chosen.recall if oracle.target_reached else 0.0}
            for name, (found, cal_labels) in calibration.items():
                rule = calibrate(scores(found), cal_labels, labels, 0.99).rule
                row[name] = dict(zip(("precision", "recall"), applied(on_dev, query_labels, labels, rule.threshold,
                                                                      rule.margin), strict=True))
            rows.append(row)
            print(json.dumps(row))
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
