"""Gallery views: how much blending simulated phone photos into each gallery row gains, per clean weight.

Each gallery row is the clean image's embedding blended with the mean embedding of COUNT simulated phone
photos of it (pocketvec.runtime.gallery.views: the training's photo simulator on the embedded backgrounds,
seeded by the file's content, as `pocketvec gallery build` makes them); the queries are the tier's photos as
`pocketvec bench` built them (its own simulator). PyTorch fp32, cosine and the runtime's local re-rank
(export defaults), the decision rule calibrated on each item's first 40 % of photos and scored on the rest,
as the benchmark does (docs/RUNTIME.md: gallery views).

    python experiments/gallery_views.py /work/benchwork/lookalikes base --count 8 --weights 1,0.75,0.5,0.25
    python experiments/gallery_views.py /work/benchwork/flags zero-shot --count 4,8
    python experiments/gallery_views.py /work/benchwork/pages /work/benchwork/pages/models/RUN
"""

from __future__ import annotations

import argparse
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from common import calibrating, embed_with_locals, photo_numbers, pixels, report, rescored

from pocketvec.runtime.gallery.views import GalleryViews, blend_views, view_photos
from pocketvec.runtime.images import content_hash, load_image
from pocketvec.runtime.local_rerank import LocalRerank
from pocketvec.runtime.preprocess import preprocess, to_batch
from pocketvec.train.checkpoint import load_run
from pocketvec.train.presets import preset_config
from pocketvec.train.student import build_student, shipped_run_dir


def load_model(name: str) -> torch.nn.Module:
    """'base' (the enroll preset's start, scale_fit), 'zero-shot' (the shipped base as the benchmark scores
    it, its own crop) or a run folder."""
    if name == "base":
        config = preset_config("enroll")
        return build_student(config.encoder, config.init).eval()
    return load_run(shipped_run_dir("base") if name == "zero-shot" else Path(name)).eval()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tier", type=Path, help="a benchmark tier folder (gallery/, queries/)")
    parser.add_argument("model", help="'base', 'zero-shot' or an enrolled run folder")
    parser.add_argument("--count", default="8", help="simulated photos per item (comma-separated to compare)")
    parser.add_argument("--weights", default="1,0.5", help="clean weights to compare (1: the clean image alone)")
    parser.add_argument("--query-crop", help="crop mode of the photos (default: the model's); two joined by '+' "
                        "average their embeddings (the local maps are the first's)")
    args = parser.parse_args()
    torch.set_num_threads(2)
    model = load_model(args.model)
    spec = model.config.preprocess
    gallery = sorted((args.tier / "gallery").glob("*.png"))
    labels = [p.stem for p in gallery]
    photos = sorted((args.tier / "queries").glob("*.jpg"))
    photo_labels = [p.name.rsplit("--q", 1)[0] for p in photos]
    calibrate = calibrating(photo_numbers(photos))
    clean, clean_maps = embed_with_locals(model, pixels(gallery, spec), None)
    query_crops = (args.query_crop or spec.query_crops[0]).split("+")
    queries, query_maps = embed_with_locals(model, pixels(photos, replace(spec, crop_mode=query_crops[0])), None)
    for crop in query_crops[1:]:
        queries = queries + embed_with_locals(model, pixels(photos, replace(spec, crop_mode=crop)), None)[0]
    queries = queries / np.linalg.norm(queries, axis=1, keepdims=True)
    settings = {"weight": LocalRerank.weight}
    for count in (int(c) for c in args.count.split(",")):
        views = [preprocess(photo, spec) for p in gallery
                 for photo in view_photos(load_image(p), content_hash(p), GalleryViews(count, aspect=1.0),
                                              spec.input_size)]
        embedded, _ = embed_with_locals(model, torch.from_numpy(to_batch(views)), None)
        for weight in (float(w) for w in args.weights.split(",")):
            rows = blend_views(clean, embedded.reshape(len(gallery), count, -1), weight)
            where = (f"{args.tier.name}\t{Path(args.model).name}\tquery {'+'.join(query_crops)}\t{count} views, "
                     f"clean weight {weight:g}")
            similarity = queries @ rows.T
            report(f"{where}\tcosine", similarity, photo_labels, labels, calibrate)
            report(f"{where}\tre-ranked", rescored(similarity, query_maps, clean_maps, settings), photo_labels,
                   labels, calibrate)


if __name__ == "__main__":
    main()
