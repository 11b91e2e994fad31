"""What the experiments share, the one module they import besides pocketvec: the command line (a model and a
benchmark tier folder), the tier's files, a tier scored with the PyTorch model, the local re-rank's report,
the accept rule applied, `--set KEY=VALUE` overrides and pocketvec's preprocessing at a git revision.

A tier folder is what `pocketvec bench` builds: gallery/ (one PNG per item, label = file name), queries/
(LABEL--qN.jpg photos) and calibration/LABEL/ (the `data photos` the accept rule is calibrated on).

The experiments run as `python experiments/NAME.py` (this folder is then on the import path) and import this
module by name; nothing here runs at import, and torch is imported only by the functions that use it.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import re
import subprocess
import sys
import types
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pocketvec.bench.measure import decision_operating_point
from pocketvec.runtime.accept_rule import rule_parts
from pocketvec.runtime.images import load_image
from pocketvec.runtime.local_rerank import LocalRerank, rerank
from pocketvec.runtime.metadata import AcceptRule
from pocketvec.runtime.metrics import best_two, recall_at_k
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess

if TYPE_CHECKING:
    import torch

REPO = Path(__file__).resolve().parents[1]
TOP_K = 5  # the re-rank's candidates, as the export ships it
CALIBRATION_FRACTION = 0.4  # as `pocketvec bench`: each item's first photos calibrate the rule
# pocketvec's preprocessing as first written (float64, one numpy operation per filter tap), the revision before
# the fast resampler; tests/runtime/preprocess_reference.py keeps the same code as the tests' oracle
FIRST_PREPROCESS = "410c92c^"


def parse_model_and_tier(doc: str | None) -> argparse.Namespace:
    """`MODEL TIER [--out JSON]` with `doc` as the help text."""
    parser = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("tier", type=Path)
    parser.add_argument("--out", type=Path)
    return parser.parse_args()


def gallery_items(tier: Path) -> tuple[list[Path], list[str]]:
    paths = sorted((tier / "gallery").glob("*.png"))
    return paths, [p.stem for p in paths]


def query_photos(tier: Path) -> tuple[list[Path], list[str]]:
    paths = sorted((tier / "queries").glob("*.jpg"))
    return paths, [re.sub(r"--q\d+$", "", p.stem) for p in paths]


def photo_numbers(paths: list[Path]) -> np.ndarray:
    """Each photo's number N (LABEL--qN.jpg)."""
    return np.array([int(p.stem.rsplit("--q", 1)[1]) for p in paths])


def calibrating(shot: np.ndarray) -> np.ndarray:
    """The photos the accept rule is calibrated on (each item's first 40 %, by photo number); scored on the rest."""
    return shot < max(1, round(CALIBRATION_FRACTION * (shot.max() + 1)))


def calibration_photos(tier: Path, labels: list[str]) -> tuple[list[Path], list[str]]:
    paths = [p for label in labels for p in sorted((tier / "calibration" / label).glob("*.jpg"))]
    return paths, [p.parent.name for p in paths]


def applied(scores: np.ndarray, photo_labels: list[str], labels: list[str], threshold: float,
            margin: float) -> tuple[float, float]:
    """(precision, recall) of the threshold + margin rule on labelled photos."""
    top, best, second = best_two(scores, labels)
    over, clear = rule_parts(best, best - second, threshold, margin)
    accepted = over & clear
    correct = accepted & (top == np.asarray(photo_labels))
    return float(correct.sum() / max(1, accepted.sum())), float(correct.sum() / len(photo_labels))


def print_way(way: str, photos: str, matched: np.ndarray, photo_labels: list[str], labels: list[str],
              rule: AcceptRule) -> None:
    """One JSON line: Recall@1, the oracle recall at precision >= 0.99 (the best rule on these photos) and the
    precision / recall of `rule` (calibrated elsewhere) on the photos scored `matched`."""
    from pocketvec.runtime.calibration import calibrate

    oracle = calibrate(matched, photo_labels, labels, 0.99)
    print(json.dumps({"way": way, "photos": photos,
                      "recall_at_1": round(recall_at_k(matched, photo_labels, labels, 1), 4),
                      "oracle": round(oracle.chosen.recall if oracle.target_reached else 0.0, 4),
                      "calibrated": [round(v, 4) for v in applied(matched, photo_labels, labels, rule.threshold,
                                                                  rule.margin)]}), flush=True)


def pixels(paths: list[Path], spec: PreprocessSpec) -> torch.Tensor:
    """Image files as the PyTorch model's NCHW float input (0-255)."""
    import torch

    return torch.from_numpy(np.stack([preprocess(load_image(p), spec) for p in paths])).permute(0, 3, 1, 2).float()


def recall_at_1(model: torch.nn.Module, tier: Path, spec: PreprocessSpec | None = None,
                query_spec: PreprocessSpec | None = None) -> float:
    """The tier's photos against its clean gallery, PyTorch fp32 and cosine (no gallery views, no re-rank);
    `spec`: the items' preprocessing (default: the model's), `query_spec` the photos' (default: `spec`)."""
    from pocketvec.train.evaluate import embed

    gallery, labels = gallery_items(tier)
    photos, photo_labels = query_photos(tier)
    spec = spec or model.config.preprocess
    scores = embed(model, pixels(photos, query_spec or spec)) @ embed(model, pixels(gallery, spec)).T
    return recall_at_k(scores, photo_labels, labels, 1)


def embed_with_locals(model: torch.nn.Module, images: torch.Tensor, stage: str | None,
                      batch: int = 32) -> tuple[np.ndarray, np.ndarray]:
    """(global embeddings (N, D), local maps (N, H*W, C) normalised per location): the model's own
    `forward_with_locals`, or the map of backbone stage `stage`."""
    import torch
    import torch.nn.functional as F

    from pocketvec.train.evaluate import embed_batches

    with torch.inference_mode():
        if stage is None:
            return embed_batches(model, (images[i:i + batch] for i in range(0, len(images), batch)),
                                 with_locals=True)
        maps: list[torch.Tensor] = []
        hook = model.backbone.get_submodule(stage).register_forward_hook(lambda _m, _i, out: maps.append(out))
        try:
            embeddings = torch.cat([model(images[i:i + batch]) for i in range(0, len(images), batch)])
        finally:
            hook.remove()
        return embeddings.numpy(), F.normalize(torch.cat(maps), dim=1).flatten(2).transpose(1, 2).numpy()


def rescored(similarity: np.ndarray, photo_maps: np.ndarray, gallery_maps: np.ndarray,
             settings: dict[str, float]) -> np.ndarray:
    """The runtime's re-rank with these `LocalRerank` settings (weight, worst_fraction, photo_weight,
    photo_threshold)."""
    config = LocalRerank(locations=gallery_maps.shape[1], channels=gallery_maps.shape[2], top_k=TOP_K, **settings)
    rows = np.arange(similarity.shape[1])  # the benchmark's galleries have one row per label
    return rerank(similarity, rows, photo_maps, gallery_maps, config)


def report(name: str, similarity: np.ndarray, photo_labels: list[str], gallery_labels: list[str],
           calibrate: np.ndarray) -> None:
    """Recall@1 and the calibrated rule's recall / precision, then Recall@1 by item kind and edition."""
    decision = decision_operating_point(similarity, photo_labels, gallery_labels, calibrate) or {}
    print(f"{name}\tR@1 {recall_at_k(similarity, photo_labels, gallery_labels, 1):.3f}\t"
          f"decision recall {decision.get('recall', float('nan')):.3f} "
          f"at precision {decision.get('precision', float('nan')):.3f}", flush=True)
    print(f"\t{by_edition(similarity, photo_labels, gallery_labels)}", flush=True)


def by_edition(similarity: np.ndarray, photo_labels: list[str], gallery_labels: list[str]) -> str:
    """Recall@1 per item kind and per edition (labels `<kind>-...--<edition>`), and the commonest confusions."""
    picked = np.asarray(gallery_labels)[similarity.argmax(axis=1)]
    truth = np.asarray(photo_labels)
    right = picked == truth
    kind = np.array([label.split("-")[0] for label in photo_labels])
    edition = np.array([label.rsplit("--", 1)[-1] for label in photo_labels])
    parts = [f"{k} {right[kind == k].mean():.3f}" for k in sorted(set(kind))]
    parts += [f"{e} {right[edition == e].mean():.3f}" for e in sorted(set(edition))]
    wrong = Counter((t.rsplit("--", 1)[-1], p.rsplit("--", 1)[-1]) for t, p in zip(truth[~right], picked[~right],
                                                                                  strict=True))
    return ", ".join(parts + [f"{t} taken for {p} x{n}" for (t, p), n in wrong.most_common(3)])


def preprocess_at(rev: str) -> Callable[[np.ndarray, PreprocessSpec], np.ndarray]:
    """`pocketvec.runtime.preprocess.preprocess` as it was at git revision `rev` (its preprocess.py, on its
    resample.py where it had one), read with `git show`; the spec's fields that revision lacks are left out."""
    def source(name: str) -> str:
        return subprocess.run(["git", "show", f"{rev}:src/pocketvec/runtime/{name}.py"], cwd=REPO, check=True,
                              capture_output=True, text=True).stdout

    has_resample = subprocess.run(["git", "cat-file", "-e", f"{rev}:src/pocketvec/runtime/resample.py"], cwd=REPO,
                                  capture_output=True).returncode == 0
    tag = re.sub(r"\W", "_", rev)
    for name in ("resample", "preprocess") if has_resample else ("preprocess",):
        module = types.ModuleType(f"{name}_at_{tag}")
        sys.modules[module.__name__] = module
        code = source(name).replace("from pocketvec.runtime.resample import", f"from resample_at_{tag} import")
        exec(compile(code, f"{rev}:{name}.py", "exec"), module.__dict__)
    old = sys.modules[f"preprocess_at_{tag}"]
    known = {field.name for field in dataclasses.fields(old.PreprocessSpec)}

    def preprocess_then(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
        return old.preprocess(image, old.PreprocessSpec(**{k: v for k, v in spec.to_dict().items() if k in known}))

    return preprocess_then


@contextmanager
def app_page(model: Path) -> Iterator[object]:
    """The sample app served with `model` (pocketvec.app_server), open in Debian's Chromium (headless, as the
    app tests run it): a Playwright page, closed with its browser and server afterwards."""
    from playwright.sync_api import sync_playwright

    from pocketvec.app_server import make_server, serve_in_thread, server_url

    server = make_server(model, port=0)
    serve_in_thread(server)
    try:
        with sync_playwright() as p:
            browser = p.chromium.launch(executable_path="/usr/bin/chromium", args=["--no-sandbox", "--headless"],
                                        headless=True)
            page = browser.new_page()
            page.goto(server_url(server) + "?sw=0")
            yield page
            browser.close()
    finally:
        server.shutdown()
