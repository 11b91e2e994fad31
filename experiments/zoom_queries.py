"""Zoom to the item (`pocketvec.runtime.item_zoom`): does embedding each photo again from the item's region,
found by fitting the item's map to the photo's, answer better than the first pass? Scored on a tier's photos and
on validation photos (phone aspect) of the tier's gallery, with the rule calibrated on the tier's `calibration/`
photos scored the same way. `box`: the item's corners from its image size (scale_fit's letterbox); `grid`: the
whole map (no size known). On dev tiers it chooses; on test tiers it only reports.

    python experiments/zoom_queries.py MODEL.onnx WORK/dev/lookalikes [--crops scale_fill scale_fit]
"""

from __future__ import annotations

import argparse
import json
import math
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import calibration_photos, gallery_items, print_way, query_photos

from pocketvec.data.validation_sim import validation_photos
from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.enroll import embed_items
from pocketvec.runtime.gallery.views import GalleryViews
from pocketvec.runtime.images import load_image
from pocketvec.runtime.item_zoom import ItemZoom, RowMap, item_corners, item_region
from pocketvec.runtime.local_rerank import label_ids, rerank, top_label_rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--crops", nargs="+", default=["own"],
                        help="the regions' crops: `own` = the model's query crops (the runtime's), or crop modes")
    parser.add_argument("--tolerance", type=float, default=1.0)
    parser.add_argument("--inliers", type=int, default=8)
    args = parser.parse_args()
    engine = open_engine(args.model, "auto", 2)
    meta = engine.metadata
    spec, config = meta.preprocess, meta.local_rerank
    side = math.isqrt(config.locations)
    paths, _ = gallery_items(args.tier)
    rows, _ = embed_items(engine, args.tier / "gallery", views=GalleryViews())
    labels, ids = rows.labels, label_ids(rows.labels)
    sizes = {p.stem: load_image(p).shape[:2] for p in paths}
    corners = {"box": [item_corners(spec.crop_mode, side, *sizes[label]) for label in labels],
               "grid": [item_corners(spec.crop_mode, side)] * len(labels)}
    cal_paths, cal_labels = calibration_photos(args.tier, labels)
    tier_paths, tier_labels = query_photos(args.tier)
    photos_v, labels_v = [], []
    for path in paths:
        photos_v += validation_photos(load_image(path), path.stem, 3)
        labels_v += [path.stem] * 3
    sets = {"calibration": ([load_image(p) for p in cal_paths], cal_labels),
            "tier": ([load_image(p) for p in tier_paths], tier_labels), "validation": (photos_v, labels_v)}
    first_crop = spec.query_crops[0]
    scores: dict[str, dict[str, np.ndarray]] = {}
    for name, (images, _) in sets.items():
        engine.metadata = meta
        found = engine.embed_all(images, query=True)
        first = rerank(found.embeddings @ rows.embeddings.T, ids, found.locals, rows.locals, config)
        scores.setdefault(name, {})["first"] = first
        first_map = found.locals[:, : side * side]  # a fused photo's first crop
        for way, item_box in corners.items():
            regions = []
            for q, image in enumerate(images):
                picked = top_label_rows(first[q], ids, config.top_k)
                candidates = [RowMap(rows.locals[r], None, item_box[r]) for r in picked]
                regions.append(item_region(first_map[q], candidates, first_crop, *image.shape[:2],
                                           ItemZoom(tolerance=args.tolerance, inliers=args.inliers)))
            zoomed = [q for q, r in enumerate(regions) if r is not None]
            crops = [images[q][regions[q][0]:regions[q][2], regions[q][1]:regions[q][3]] for q in zoomed]
            for crop in args.crops:
                own = spec.query_crop_mode if crop == "own" else crop
                engine.metadata = replace(meta, preprocess=replace(spec, query_crop_mode=own))
                second = engine.embed_all(crops, query=True)
                embeddings, maps = found.embeddings.copy(), found.locals.copy()
                if len(zoomed):
                    embeddings[zoomed] = second.embeddings
                    # a single-crop map repeated once per first-pass crop: the same scores
                    maps[zoomed] = np.concatenate([second.locals] * (maps.shape[1] // second.locals.shape[1]), 1)
                scores[name][f"zoom {way} {crop}"] = rerank(embeddings @ rows.embeddings.T, ids, maps, rows.locals,
                                                            config)
            print(json.dumps({"photos": name, "way": way, "zoomed": len(zoomed), "of": len(images)}), flush=True)
    for way in scores["tier"]:
        rule = calibrate(scores["calibration"][way], cal_labels, labels, 0.99).rule
        for name in ("tier", "validation"):
            print_way(way, name, scores[name][way], sets[name][1], labels, rule)

if __name__ == "__main__":
    main()
