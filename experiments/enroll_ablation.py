"""Enrolment ablations on the look-alike stress tier (docs/lab/enroll-notebook.md).

Fine-tunes the `enroll` preset with overrides on the 255 look-alike items, then scores the merged
PyTorch model on photos from the benchmark photo simulator (3 per item; the decision rule is calibrated
on photo 0 and scored on photos 1-2). One JSON line per run is appended to <work>/results.jsonl.

    python experiments/enroll_ablation.py NAME EPOCHS [KEY=VALUE ...]
    python experiments/enroll_ablation.py fit_upright6_imp 6 imprint_centres=true encoder.preprocess.crop_mode=scale_fit
    python experiments/enroll_ablation.py zero-shot 0 encoder.preprocess.crop_mode=scale_fit   # the start, no training
    python experiments/enroll_ablation.py fit_upright6_imp -1   # score the finished run of that name again
"""

from __future__ import annotations

import json
import shutil
import sys
import time
from pathlib import Path

import numpy as np
import torch

from pocketvec.bench.backgrounds import wallpaper_paths
from pocketvec.bench.lookalikes import build_lookalikes
from pocketvec.bench.measure import accuracy
from pocketvec.bench.simulator import PhotoSimConfig, query_rng, simulate_photo
from pocketvec.cli.train import parse_set
from pocketvec.runtime.images import load_image
from pocketvec.runtime.preprocess import preprocess
from pocketvec.train.checkpoint import load_run
from pocketvec.train.loop import Trainer
from pocketvec.train.presets import preset_config
from pocketvec.train.student import build_student

PHOTOS = 3
WORK = Path("/tmp/enroll-ablation")


def look_alike_tier() -> tuple[list[Path], list[str], list[Path], list[str]]:
    folder = build_lookalikes()
    paths = sorted(folder.glob("*.png"))
    labels = [p.stem for p in paths]
    photo_dir = WORK / "queries"
    photo_dir.mkdir(parents=True, exist_ok=True)
    backgrounds = wallpaper_paths()
    photos, photo_labels = [], []
    for path, label in zip(paths, labels, strict=True):
        for k in range(PHOTOS):
            out = photo_dir / f"{label}--q{k}.jpg"
            if not out.exists():
                photo = simulate_photo(load_image(path), query_rng(0, label, k), backgrounds, PhotoSimConfig())
                out.write_bytes(photo)
            photos.append(out)
            photo_labels.append(label)
    return paths, labels, photos, photo_labels


@torch.no_grad()
def embed(model: torch.nn.Module, paths: list[Path]) -> np.ndarray:
    spec = model.config.preprocess
    pixels = torch.from_numpy(np.stack([preprocess(load_image(p), spec) for p in paths])).permute(0, 3, 1, 2).float()
    return torch.cat([model.eval()(pixels[i : i + 64]) for i in range(0, len(pixels), 64)]).numpy()


def learned_centres(trainer: Trainer) -> np.ndarray | None:
    """The margin head's class centre of each item's whole upright view (its last, not its kept, weights)."""
    if "partial_fc" not in trainer.losses:
        return None
    pfc = trainer.losses["partial_fc"]
    whole = {v.item_index: v.class_id for v in trainer.maker.variants
             if v.rotation == 0 and not v.flip and v.region == "full"}
    weight = torch.nn.functional.normalize(pfc.weight.detach(), dim=-1).numpy()
    return weight[[whole[i] for i in range(len(trainer.labels))]]


def centre_gallery(centres: np.ndarray | None, queries: np.ndarray, photo_labels: list[str],
                   labels: list[str]) -> float | None:
    """Recall@1 with the learned centres as the gallery instead of the clean items' embeddings."""
    if centres is None:
        return None
    top1 = np.asarray(labels)[np.argmax(queries @ centres.T, axis=1)]
    return round(float((top1 == np.asarray(photo_labels)).mean()), 3)


def recall_by_edition(gallery: np.ndarray, queries: np.ndarray, labels: list[str], photo_labels: list[str]) -> dict:
    """Recall@1 per edition kind ("--serial", "--recolour", ...): which look-alike detail the model misses."""
    top1 = np.asarray(labels)[np.argmax(queries @ gallery.T, axis=1)]
    editions = np.asarray([label.rsplit("--", 1)[-1] for label in photo_labels])
    hits = top1 == np.asarray(photo_labels)
    return {edition: round(float(hits[editions == edition].mean()), 3) for edition in sorted(set(editions))}


def main(name: str, epochs: int, overrides: dict) -> dict:
    paths, labels, photos, photo_labels = look_alike_tier()
    config = preset_config("enroll").with_overrides({"epochs": max(1, epochs), **overrides})
    out = WORK / "runs" / name
    if epochs >= 0:
        shutil.rmtree(out, ignore_errors=True)
    started, history, centres = time.monotonic(), [], None
    if epochs < 0:  # score a finished run of this name again
        model = load_run(out)
    elif epochs:
        trainer = Trainer(config, paths[0].parent, out)
        trainer.run()
        centres = learned_centres(trainer)
        model, history = load_run(out), [(h["epoch"], round(h["recall_at_1"], 3)) for h in trainer.history]
    else:
        model = build_student(config.encoder, config.init)
    seconds = time.monotonic() - started
    gallery, queries = embed(model, paths), embed(model, photos)
    calibrate = np.array([i % PHOTOS == 0 for i in range(len(photos))])
    result, _ = accuracy(queries, gallery, photo_labels, labels, calibrate)
    decision = result.decision or {}
    pairs = (gallery @ gallery.T)[np.triu_indices(len(gallery), 1)]
    out.parent.mkdir(parents=True, exist_ok=True)
    np.savez(out.parent / f"{name}.npz", gallery=gallery, queries=queries)
    line = {"name": name, "overrides": overrides, "epochs": epochs, "train_s": round(seconds),
            "recall_at_1": round(result.recall_at_1, 3), "best_f1": round(result.f1, 3),
            "tpr_at_fpr_1e3": round(result.tpr_at_fpr_1e3, 3),
            "decision_precision": round(decision.get("precision", 0), 3),
            "decision_recall": round(decision.get("recall", 0), 3),
            "gallery_mean_cosine": round(float(pairs.mean()), 3),
            "held_out_history": history,
            "centre_gallery_recall_at_1": centre_gallery(centres, queries, photo_labels, labels),
            "recall_by_edition": recall_by_edition(gallery, queries, labels, photo_labels)}
    with open(WORK / "results.jsonl", "a") as f:
        f.write(json.dumps(line) + "\n")
    return line


if __name__ == "__main__":
    print(json.dumps(main(sys.argv[1], int(sys.argv[2]), parse_set(sys.argv[3:]))))
