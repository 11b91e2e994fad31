"""Zero-shot A/B of run folders on the public benchmark's tiers, where the data cache is absent.

`build` (here, with the cache) writes the tiers the way `pocketvec bench` does (pocketvec.bench.dataset:
the same items, simulator and seeds) and keeps only what evaluation reads: each tier's gallery, query
photos and benchmark.json, small enough to carry to a GPU machine. `evaluate` embeds them with each run
(torch fp32, CUDA when present) and scores them with the bench's own `accuracy` (Recall@1, decision
recall at precision >= 0.99 on held-out photos, ...), so its numbers are the bench's torch-fp32 rows.

    python -m pocketvec.bench.tiers build .carry/bench --pages 150 --flags 150 --photos 5
    python -m pocketvec.bench.tiers evaluate .carry/bench --runs NEW_RUN src/pocketvec/assets/base
"""

from __future__ import annotations

import argparse
import json
import re
import shutil
from pathlib import Path

import numpy as np

from pocketvec.bounded_json import read_json
from pocketvec.errors import DatasetError

KEPT = ("gallery", "queries", "benchmark.json")


def build(out: str | Path, pages: int, flags: int, lookalike_groups: int, photos: int, seed: int = 0,
          label_designs: int = 0) -> Path:
    """The benchmark's tiers for these counts, reduced to what `evaluate` reads."""
    from pocketvec.bench.dataset import BenchConfig, build_benchmark

    out = Path(out)
    config = BenchConfig(pages=pages, flags=flags, lookalike_page_groups=lookalike_groups // 2,
                         lookalike_flag_groups=lookalike_groups - lookalike_groups // 2, label_designs=label_designs,
                         queries_per_item=photos, seed=seed)
    build_benchmark(out, config)
    for tier in out.iterdir():
        if tier.is_dir():
            for part in tier.iterdir():
                if part.name not in KEPT:
                    shutil.rmtree(part) if part.is_dir() else part.unlink()
    return out


def _tier(folder: Path) -> tuple[list[Path], list[str], list[Path], list[str], int]:
    """Gallery paths and labels, query paths and labels, photos per item of one built tier."""
    stamp = folder / "benchmark.json"
    if not stamp.is_file():
        raise DatasetError(f"{folder}: not a built benchmark tier (no benchmark.json); run `build` first")
    photos = int(read_json(stamp, "benchmark stamp")["config"]["queries_per_item"])
    gallery = sorted(p for p in (folder / "gallery").iterdir() if p.is_file())
    queries = sorted((folder / "queries").glob("*--q*.jpg"))
    if not gallery or not queries:
        raise DatasetError(f"{folder}: a tier needs gallery/ and queries/ images")
    label = lambda p: re.sub(r"--q\d+$", "", p.stem)  # noqa: E731
    return gallery, [p.stem for p in gallery], queries, [label(p) for p in queries], photos


def _embed(run: Path, pixels: np.ndarray, batch: int = 128) -> np.ndarray:
    import torch

    from pocketvec.runtime.preprocess import to_batch
    from pocketvec.train.checkpoint import load_run

    device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
    model = load_run(run).eval().to(device)
    with torch.inference_mode():
        rows = [model(torch.from_numpy(to_batch(list(pixels[i : i + batch]))).to(device)).float().cpu().numpy()
                for i in range(0, len(pixels), batch)]
    return np.concatenate(rows)


def evaluate(work: str | Path, runs: list[str]) -> list[dict]:
    """One row per tier and run: the bench's accuracy numbers of the torch fp32 model, zero-shot."""
    from pocketvec.bench.formats import prepared_photo_pixels, prepared_pixels
    from pocketvec.bench.measure import accuracy
    from pocketvec.bench.run import calibration_mask
    from pocketvec.runtime.photo_crops import fuse_crops
    from pocketvec.runtime.preprocess import PreprocessSpec
    from pocketvec.train.checkpoint import read_run_config

    work = Path(work)
    tiers = sorted(p for p in work.iterdir() if (p / "benchmark.json").is_file()) if work.is_dir() else []
    if not tiers:
        raise DatasetError(f"{work}: no built benchmark tiers in it")
    rows = []
    for folder in tiers:
        gallery, gallery_labels, queries, query_labels, photos = _tier(folder)
        mask = calibration_mask(queries, photos)
        for run in runs:
            spec = PreprocessSpec.from_dict(read_run_config(run)["encoder"]["preprocess"])
            cache = folder / "pixels"
            g = _embed(Path(run), prepared_pixels(gallery, spec, cache))
            photos = prepared_photo_pixels(queries, spec, cache)
            q = fuse_crops(_embed(Path(run), photos.reshape(-1, *photos.shape[2:])), None, photos.shape[1])[0]
            result = accuracy(q, g, query_labels, gallery_labels, mask)[0].to_dict()
            rows.append({"tier": folder.name, "run": str(run), "items": len(gallery), "queries": len(queries),
                         "input_size": spec.input_size, **result})
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="what", required=True)
    make = sub.add_parser("build", help="build the tiers from the data cache, e.g. build .carry/bench --photos 5")
    make.add_argument("out")
    make.add_argument("--pages", type=int, default=150)
    make.add_argument("--flags", type=int, default=150)
    make.add_argument("--lookalike-groups", type=int, default=51)
    make.add_argument("--labels", type=int, default=0,  # off unless asked: its PNGs would swell the carried folder
                      help="label designs of the label-editions tier (5 editions each; default 0: no labels tier)")
    make.add_argument("--photos", type=int, default=5)
    score = sub.add_parser("evaluate", help="score runs, e.g. evaluate .carry/bench --runs NEW_RUN OLD_RUN")
    score.add_argument("work")
    score.add_argument("--runs", nargs="+", required=True)
    args = parser.parse_args()
    if args.what == "build":
        print(build(args.out, args.pages, args.flags, args.lookalike_groups, args.photos, label_designs=args.labels))
    else:
        for row in evaluate(args.work, args.runs):
            print(json.dumps(row))


if __name__ == "__main__":
    main()
