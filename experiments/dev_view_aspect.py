"""The gallery views' frame chosen on validation photos, reported on the benchmark's *dev* split: square photos
(as before) against phone-aspect ones (portrait 3:4, landscape 4:3), each embedded with the model's photos'
crop. Blend 0.5 and the re-rank as shipped.

    python experiments/dev_view_aspect.py MODEL.onnx WORK/dev/lookalikes [--out results.json]

Reported per frame: on 4 validation-simulator photos per item (what the choice is made on) Recall@1 and the
oracle recall at precision >= 0.99; on the dev photos the same, and the precision / recall of the rule
calibrated (target 0.99) on the tier's `calibration/` photos (the bench's `data photos`).
"""

from __future__ import annotations

import json

import numpy as np
from common import applied, calibration_photos, gallery_items, parse_model_and_tier, query_photos

from pocketvec.data.validation_sim import validation_photos
from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.gallery.views import GalleryViews, blend_views, view_photos
from pocketvec.runtime.images import content_hash, load_image
from pocketvec.runtime.local_rerank import label_ids, rerank
from pocketvec.runtime.metrics import recall_at_k

FRAMES = {"square": 1.0, "portrait 3:4": 4 / 3, "landscape 4:3": 3 / 4}


def main() -> None:
    args = parse_model_and_tier(__doc__)
    engine = open_engine(args.model, "auto", 2)
    size = engine.metadata.preprocess.input_size
    paths, labels = gallery_items(args.tier)
    images = [load_image(p) for p in paths]
    items = engine.embed_all(paths)
    queries, query_labels = query_photos(args.tier)
    dev = (engine.embed_all(queries, query=True), query_labels)
    cal_paths, cal_labels = calibration_photos(args.tier, labels)
    cal = (engine.embed_all(cal_paths, query=True), cal_labels)
    val = engine.embed_all([photo for image, label in zip(images, labels, strict=True)
                            for photo in validation_photos(image, label, 4)], query=True)
    val = (val, [label for label in labels for _ in range(4)])
    ids, config = label_ids(labels), engine.metadata.local_rerank
    rows = []
    for name, aspect in FRAMES.items():
        views = GalleryViews(aspect=aspect)
        embedded = np.stack([engine.embed(view_photos(image, content_hash(p), views, size), query=True)
                             for image, p in zip(images, paths, strict=True)])
        gallery = blend_views(items.embeddings, embedded, views.clean_weight)

        def scores(found) -> np.ndarray:
            return rerank(found.embeddings @ gallery.T, ids, found.locals, items.locals, config)  # noqa: B023

        crop = engine.metadata.preprocess.query_crops[0]
        row = {"frame": name, "model": args.model.parent.name, "photos_crop": crop}
        for where, (found, photo_labels) in {"validation": val, "dev": dev}.items():
            matched = scores(found)
            oracle = calibrate(matched, photo_labels, labels, 0.99)
            row[where] = {"recall_at_1": recall_at_k(matched, photo_labels, labels, 1),
                          "oracle": oracle.chosen.recall if oracle.target_reached else 0.0}
        rule = calibrate(scores(cal[0]), cal[1], labels, 0.99).rule
        row["dev"]["calibrated"] = applied(scores(dev[0]), dev[1], labels, rule.threshold, rule.margin)
        rows.append(row)
        print(json.dumps(row), flush=True)
    if args.out:
        args.out.write_text(json.dumps(rows, indent=1))


if __name__ == "__main__":
    main()
