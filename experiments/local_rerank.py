"""Re-rank each photo's top 5 by local matching: how much the global embedding leaves on the table.

For every gallery item and photo the backbone's stride-16 feature map (Lite0: blocks.4, 14x14x112 at
224 px) is kept, each location L2-normalised. A candidate's local score is the mean, over the
candidate's locations, of the best cosine with any location of the photo (gallery-to-photo chamfer
similarity: a mark the candidate has and the photo lacks finds no match), with the later terms of the
runtime's score (its worst locations, and photo-to-gallery over the photo's item locations). The top 5
by global cosine are re-scored global - lam * (best local - local); the rest drop out: the runtime's
matcher (`pocketvec.runtime.local_rerank`; the defaults here are what `pocketvec export` ships).
Training-free: the model is the one the benchmark scores (PyTorch fp32), on the tier's gallery and
photos as `pocketvec bench` built them; decision rule calibrated on each item's first 40 % of photos,
scored on the rest, as the benchmark does (docs/RUNTIME.md: the local re-rank). Variants:
`--worst-fraction 0 --photo-weight 0` (the gallery-to-photo mean alone), `--photo-threshold -1`
(every photo location counts: the symmetric chamfer), `--stage NAME` (another backbone stage's map).

    python experiments/local_rerank.py /work/benchwork/lookalikes base
    python experiments/local_rerank.py /work/benchwork/lookalikes /work/benchwork/lookalikes/models/RUN --lams 2,4,8
    python experiments/local_rerank.py /work/benchwork/lookalikes base --simulate 3   # lam on other photos
    python experiments/local_rerank.py /work/benchwork/lookalikes base --worst-fraction 0 --photo-weight 0 --lams 2
    python experiments/local_rerank.py /work/benchwork/lookalikes base --photo-threshold -1 --stage blocks.5
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from common import calibrating, embed_with_locals, photo_numbers, pixels, report, rescored

from pocketvec.data.augment import PhoneAugment
from pocketvec.runtime.images import load_image
from pocketvec.runtime.local_rerank import LocalRerank
from pocketvec.runtime.preprocess import preprocess, to_batch
from pocketvec.train.checkpoint import load_run
from pocketvec.train.presets import preset_config
from pocketvec.train.student import build_student


def simulated(gallery: list[Path], spec, per_item: int) -> tuple[torch.Tensor, list[str], np.ndarray]:
    """`per_item` photos of each gallery image from the training's photo simulator (seed 1), as the model's
    input; their labels and photo numbers."""
    simulate, rng = PhoneAugment(output_size=spec.input_size), np.random.default_rng(1)
    images = [preprocess(simulate(load_image(p), rng), spec) for p in gallery for _ in range(per_item)]
    labels = [p.stem for p in gallery for _ in range(per_item)]
    return torch.from_numpy(to_batch(images)), labels, np.tile(np.arange(per_item), len(gallery))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tier", type=Path, help="a benchmark tier folder (gallery/, queries/)")
    parser.add_argument("model", help="'base' (the enroll preset's start, zero-shot) or an enrolled run folder")
    parser.add_argument("--lams", default="2,3,4", help="weights of the local score")
    parser.add_argument("--worst-fraction", type=float, default=LocalRerank.worst_fraction,
                        help="found: the mean also over the worst fraction of the item's locations (0: plain mean)")
    parser.add_argument("--photo-weight", type=float, default=LocalRerank.photo_weight,
                        help="weight of photo-to-gallery matching over the photo's item locations (0: none)")
    parser.add_argument("--photo-threshold", type=float, default=LocalRerank.photo_threshold,
                        help="a photo location is on the item when a candidate matches it above this "
                             "(-1: every location, the symmetric chamfer)")
    parser.add_argument("--stage", default=None, help="a backbone stage (e.g. blocks.5) instead of the stride-16 one")
    parser.add_argument("--simulate", type=int, default=0, metavar="N",
                        help="score N photos per item from the training's photo simulator instead of the tier's "
                             "photos (to choose lam on photos the benchmark does not score)")
    args = parser.parse_args()
    if args.model == "base":
        config = preset_config("enroll")
        model = build_student(config.encoder, config.init).eval()
    else:
        model = load_run(Path(args.model)).eval()
    spec = model.config.preprocess
    gallery = sorted((args.tier / "gallery").glob("*.png"))
    gallery_labels = [p.stem for p in gallery]
    if args.simulate:
        photo_pixels, photo_labels, shot = simulated(gallery, spec, args.simulate)
    else:
        photos = sorted((args.tier / "queries").glob("*.jpg"))
        photo_pixels = pixels(photos, spec.query_specs()[0])  # photos cropped as the runtime crops them
        photo_labels = [p.name.rsplit("--q", 1)[0] for p in photos]
        shot = photo_numbers(photos)
    calibrate = calibrating(shot)
    g_emb, g_loc = embed_with_locals(model, pixels(gallery, spec), args.stage)
    p_emb, p_loc = embed_with_locals(model, photo_pixels, args.stage)
    similarity = p_emb @ g_emb.T
    photos_from = " (training simulator)" if args.simulate else ""
    where = f"{args.tier.name}{photos_from}\t{Path(args.model).name}\t{spec.input_size} px {spec.crop_mode}"
    report(f"{where}\tglobal", similarity, photo_labels, gallery_labels, calibrate)
    settings = {"worst_fraction": args.worst_fraction, "photo_weight": args.photo_weight,
                "photo_threshold": args.photo_threshold}
    how = f"{args.stage or 'stride-16 stage'}, " + ", ".join(f"{k} {v:g}" for k, v in settings.items())
    for lam in (float(v) for v in args.lams.split(",")):
        reranked = rescored(similarity, p_loc, g_loc, {"weight": lam, **settings})
        report(f"{where}\tre-ranked ({how}) lam {lam:g}", reranked, photo_labels, gallery_labels, calibrate)


if __name__ == "__main__":
    main()
