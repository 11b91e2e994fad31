"""Does embedding each photo with both crops (`scale_fill`, `center_crop`) and keeping, per gallery row, the
better re-ranked score ("max"), or embedding the photo as the mean of its crops' embeddings with both crops' local
locations pooled ("fused") make the answer independent of how the photo is framed? Scored on a tier's photos and
on validation photos (phone aspect) of the tier's gallery, with the rule calibrated on the tier's
`calibration/` photos scored the same way. On dev tiers it chooses; on test tiers it only reports.

    python experiments/two_crop_queries.py MODEL.onnx WORK/dev/lookalikes
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
from common import calibration_photos, gallery_items, parse_model_and_tier, print_way, query_photos

from pocketvec.data.validation_sim import validation_photos
from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.enroll import embed_items
from pocketvec.runtime.gallery.views import GalleryViews
from pocketvec.runtime.images import load_image
from pocketvec.runtime.local_rerank import label_ids, rerank

CROPS = ("scale_fill", "center_crop")


def main() -> None:
    args = parse_model_and_tier(__doc__)
    engine = open_engine(args.model, "auto", 2)
    spec = engine.metadata.preprocess
    paths, _ = gallery_items(args.tier)
    photo_sets = {"tier": query_photos(args.tier)}
    photos, labels_v = [], []
    for path in paths:
        photos += validation_photos(load_image(path), path.stem, 3)
        labels_v += [path.stem] * 3
    photo_sets["validation"] = (photos, labels_v)
    scores: dict[str, dict[str, np.ndarray]] = {}
    embedded: dict[str, list] = {}
    for crop in CROPS:  # gallery views are square: every crop gives the same rows
        engine.metadata = replace(engine.metadata, preprocess=replace(spec, query_crop_mode=crop))
        rows, _ = embed_items(engine, args.tier / "gallery", views=GalleryViews())
        labels, ids = rows.labels, label_ids(rows.labels)
        cal_paths, cal_labels = calibration_photos(args.tier, labels)
        for name, (images, _) in {"calibration": (cal_paths, cal_labels), **photo_sets}.items():
            found = engine.embed_all(images, query=True)
            embedded.setdefault(name, []).append(found)
            scores.setdefault(name, {})[crop] = rerank(found.embeddings @ rows.embeddings.T, ids, found.locals,
                                                        rows.locals, engine.metadata.local_rerank)
    for name in scores:
        scores[name]["max"] = np.maximum(*(scores[name][c] for c in CROPS))
        mean = sum(found.embeddings for found in embedded[name])
        mean /= np.linalg.norm(mean, axis=1, keepdims=True)
        pooled = np.concatenate([found.locals for found in embedded[name]], axis=1)
        scores[name]["fused"] = rerank(mean @ rows.embeddings.T, ids, pooled, rows.locals, engine.metadata.local_rerank)
    for way in (*CROPS, "max", "fused"):
        rule = calibrate(scores["calibration"][way], cal_labels, labels, 0.99).rule
        for name, (_, photo_labels) in photo_sets.items():
            print_way(way, name, scores[name][way], photo_labels, labels, rule)

if __name__ == "__main__":
    main()
