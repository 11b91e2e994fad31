"""The WiSE-FT blend of an enroll run, re-chosen on the benchmark's *dev* split.

    python experiments/dev_wise_alpha.py RUN WORK/dev/lookalikes [--alphas 0.25 0.5 0.75 1.0]

RUN is an enroll run trained with `wise_alpha` a (its float weights, model.unrounded-float.safetensors, are
start + a x (fine-tuned - start)); the fine-tuned weights are recovered from them and re-blended at each alpha,
rounded onto the int8 grid as the preset ships them, and scored as the safety net scores (gallery views,
the run's photo crop, the re-rank) on the dev tier's benchmark photos: Recall@1 and the best recall at
precision >= 0.99 (oracle).
"""

from __future__ import annotations

import argparse
import json
import re
from pathlib import Path

import torch

from pocketvec.runtime.gallery.views import GalleryViews, view_photos
from pocketvec.runtime.images import content_hash, load_image
from pocketvec.train.checkpoint import FLOAT_WEIGHTS_FILE, load_run, read_run_config
from pocketvec.train.evaluate import HeldOut, _pixels, evaluate
from pocketvec.train.keep_best import on_grid
from pocketvec.train.student import build_student


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run", type=Path)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--alphas", type=float, nargs="+", default=[0.25, 0.5, 0.75, 1.0])
    args = parser.parse_args()
    torch.set_num_threads(2)
    config = read_run_config(args.run)
    alpha = config["train"]["wise_alpha"]
    blended = load_run(args.run, weights_file=FLOAT_WEIGHTS_FILE).eval()
    start = build_student(blended.config, config["train"]["init"]).eval()
    spec = blended.config.preprocess
    paths = sorted((args.tier / "gallery").glob("*.png"))
    labels = [p.stem for p in paths]
    images = [load_image(p) for p in paths]
    crop = spec.query_crops[0]
    views = {crop: torch.stack([_pixels(view_photos(image, content_hash(p), GalleryViews(), spec.input_size),
                                        spec.query_specs()[0]) for image, p in zip(images, paths, strict=True)])}
    queries = sorted((args.tier / "queries").glob("*.jpg"))
    photos = _pixels((load_image(p) for p in queries), spec.query_specs()[0])
    held_out = HeldOut(_pixels(images, spec), views, GalleryViews().clean_weight, {crop: photos}, labels,
                       [re.sub(r"--q\d+$", "", p.stem) for p in queries])
    start_state, blended_state = start.state_dict(), blended.state_dict()
    for wanted in args.alphas:
        model = load_run(args.run, weights_file=FLOAT_WEIGHTS_FILE).eval()
        for name, tensor in model.state_dict().items():
            if tensor.is_floating_point():  # fine-tuned = start + (blended - start) / alpha, re-blended at `wanted`
                tuned = start_state[name] + (blended_state[name] - start_state[name]) / alpha
                tensor.copy_(start_state[name].lerp(tuned, wanted))
        metrics = evaluate(on_grid(model, True), held_out)
        print(json.dumps({"wise_alpha": wanted, **{k: metrics[k] for k in ("decision_recall", "recall_at_1")}}))


if __name__ == "__main__":
    main()
