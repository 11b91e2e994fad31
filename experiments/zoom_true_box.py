"""Zoom to the item against the item's true box: validation photos of a tier's gallery cropped to the bounding box
of the item's true corners (read from the simulator's perspective warp, which only an experiment may do), and
how well the runtime's region (`pocketvec.runtime.zoomed_photos.item_regions`) covers that box (IoU).

    python experiments/zoom_true_box.py MODEL.onnx WORK/dev/lookalikes
"""

from __future__ import annotations

import json
from dataclasses import replace
from unittest import mock

import numpy as np
from common import gallery_items, parse_model_and_tier

import pocketvec.data.validation_sim as validation_sim
from pocketvec.runtime.calibration import calibrate
from pocketvec.runtime.engines import open_engine
from pocketvec.runtime.enroll import embed_items
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.gallery.views import GalleryViews
from pocketvec.runtime.images import load_image
from pocketvec.runtime.item_zoom import ItemZoom
from pocketvec.runtime.local_rerank import label_ids, rerank
from pocketvec.runtime.matcher import Matcher
from pocketvec.runtime.metrics import recall_at_k
from pocketvec.runtime.zoomed_photos import item_regions


def photos_with_true_boxes(paths: list) -> tuple[list[np.ndarray], list[str], list[tuple[int, int, int, int]]]:
    """3 validation photos per item, their labels and the item's true box (top, left, bottom, right)."""
    quads: list[np.ndarray] = []
    warp = validation_sim.cv2.getPerspectiveTransform

    def recorded(src, dst):
        quads.append(np.asarray(dst))
        return warp(src, dst)

    photos, labels, boxes = [], [], []
    with mock.patch.object(validation_sim.cv2, "getPerspectiveTransform", recorded):
        for path in paths:
            quads.clear()
            made = validation_sim.validation_photos(load_image(path), path.stem, 3)
            photos += made
            labels += [path.stem] * 3
            for photo, quad in zip(made, quads, strict=True):
                (x0, y0), (x1, y1) = quad.min(axis=0), quad.max(axis=0)
                h, w = photo.shape[:2]
                boxes.append((max(0, int(y0)), max(0, int(x0)), min(h, int(np.ceil(y1))), min(w, int(np.ceil(x1)))))
    return photos, labels, boxes


def iou(a: tuple[int, int, int, int], b: tuple[int, int, int, int]) -> float:
    inter = max(0, min(a[2], b[2]) - max(a[0], b[0])) * max(0, min(a[3], b[3]) - max(a[1], b[1]))
    union = (a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - inter
    return inter / union if union else 0.0


def main() -> None:
    args = parse_model_and_tier(__doc__)
    engine = open_engine(args.model, "auto", 2)
    config = engine.metadata.local_rerank
    paths, _ = gallery_items(args.tier)
    rows, _ = embed_items(engine, args.tier / "gallery", views=GalleryViews())
    labels, ids = rows.labels, label_ids(rows.labels)
    photos, photo_labels, boxes = photos_with_true_boxes(paths)

    def report(way: str, found) -> None:
        scores = rerank(found.embeddings @ rows.embeddings.T, ids, found.locals, rows.locals, config)
        oracle = calibrate(scores, photo_labels, labels, 0.99)
        print(json.dumps({"way": way, "recall_at_1": round(recall_at_k(scores, photo_labels, labels, 1), 4),
                          "oracle": round(oracle.chosen.recall if oracle.target_reached else 0.0, 4)}), flush=True)

    first = engine.embed_all(photos, query=True)
    report("first pass", first)
    gallery = Gallery.for_model(engine.metadata, "float32")
    gallery.add(rows.embeddings, labels, [str(p) for p in paths], rows.locals, engine.metadata)
    regions = item_regions(engine, Matcher.for_model(engine.metadata, gallery), first, photos, ItemZoom())
    overlaps = np.array([iou(r, b) if r else np.nan for r, b in zip(regions, boxes, strict=True)])
    print(json.dumps({"regions": int(np.isfinite(overlaps).sum()), "of": len(photos),
                      "iou_median": round(float(np.nanmedian(overlaps)), 3),
                      "iou_over_0.7": round(float(np.nanmean(overlaps > 0.7)), 3)}), flush=True)
    spec = engine.metadata.preprocess
    for crop in ("scale_fit", "scale_fill"):
        engine.metadata = replace(engine.metadata, preprocess=replace(spec, query_crop_mode=crop))
        crops = [photo[top:bottom, left:right] for photo, (top, left, bottom, right) in zip(photos, boxes, strict=True)]
        report(f"true box, {crop}", engine.embed_all(crops, query=True))


if __name__ == "__main__":
    main()
