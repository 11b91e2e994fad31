"""What the benchmark measures: accuracy from embeddings, and cost (parameters, FLOPs, latency).

Accuracy uses pocketvec.runtime.metrics (pair level) and pocketvec.runtime.calibration (decision
level: one answer per photo, threshold + margin). The decision rule is calibrated on one set of photos
and scored on another it never saw, so its precision is held out: the bench calibrates on `pocketvec
data photos` of the gallery (what a user can do) and scores on every benchmark photo.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from pocketvec.runtime.metrics import best_f1, pair_sweep, recall_at_k, tpr_at_fpr
from pocketvec.runtime.onnx_options import session_options

if TYPE_CHECKING:
    from pocketvec.runtime.item_zoom import PhotoRegion


@dataclass(frozen=True)
class Accuracy:
    recall_at_1: float
    recall_at_5: float
    best_threshold: float
    precision: float
    recall: float
    f1: float
    f05: float  # F-beta (0.5) at the best-F1 threshold
    positives: int
    negatives: int
    tpr_at_fpr_1e3: float
    tpr_at_fpr_1e4: float
    decision: dict | None  # decision-level rule at precision >= 0.99 (calibrated / held out), or None

    def to_dict(self) -> dict:
        return asdict(self)


# What a decision rule is calibrated on: (scores, labels) of calibration photos against the same gallery
# rows (the rule is then scored on every query), or a boolean mask over the queries (calibrated on the
# masked ones, scored on the others); None: no decision rule.
Calibration = tuple[np.ndarray, list[str]] | np.ndarray | None


def decision_operating_point(similarity: np.ndarray, query_labels: list[str], gallery_labels: list[str],
                             calibration: Calibration, target: float = 0.99) -> dict | None:
    """Threshold + margin calibrated for `target` precision on `calibration`, scored on the held-out queries."""
    try:
        from pocketvec.runtime.calibration import MARGINS, THRESHOLDS, calibrate, decision_grid
    except ImportError:
        return None
    if calibration is None:
        return None
    if isinstance(calibration, np.ndarray):  # a mask over the queries
        mask, labels = calibration.astype(bool), np.asarray(query_labels)
        calibration = (similarity[mask], list(labels[mask]))
        similarity, query_labels = similarity[~mask], list(labels[~mask])
    calibration_similarity, calibration_labels = calibration
    if not len(calibration_labels) or not len(query_labels):
        return None
    fitted = calibrate(calibration_similarity, list(calibration_labels), gallery_labels, target)
    accepted, correct = decision_grid(similarity, list(query_labels), gallery_labels)
    ti = int(np.argmin(np.abs(THRESHOLDS - fitted.chosen.threshold)))
    mi = int(np.argmin(np.abs(MARGINS - fitted.chosen.margin)))
    n_accepted, n_correct = int(accepted[ti, mi]), int(correct[ti, mi])
    return {"threshold": fitted.chosen.threshold, "margin": fitted.chosen.margin,
            "target_reached_on_calibration": fitted.target_reached,
            "calibration_queries": len(calibration_labels), "held_out_queries": len(query_labels),
            "precision": n_correct / n_accepted if n_accepted else 1.0,
            "recall": n_correct / len(query_labels), "accepted": n_accepted, "correct": n_correct}


def accuracy(query: np.ndarray, gallery: np.ndarray, query_labels: list[str], gallery_labels: list[str],
             calibration: Calibration = None) -> tuple[Accuracy, list]:
    """Every accuracy number of one model form, plus the full pair sweep (for the plots). `calibration`:
    (embeddings, labels) of calibration photos, or a mask over the queries (`decision_operating_point`)."""
    if isinstance(calibration, tuple):
        calibration = (calibration[0] @ gallery.T, calibration[1])
    return accuracy_of(query @ gallery.T, query_labels, gallery_labels, calibration)


def accuracy_of(similarity: np.ndarray, query_labels: list[str], gallery_labels: list[str],
                calibration: Calibration = None) -> tuple[Accuracy, list]:
    """`accuracy` from (queries, gallery rows) scores: cosines, or scores re-ranked by the local maps;
    `calibration` holds scores too (of the calibration photos against the same rows), or is a mask."""
    rows = pair_sweep(similarity, query_labels, gallery_labels)
    best = best_f1(rows)
    result = Accuracy(
        recall_at_k(similarity, query_labels, gallery_labels, 1),
        recall_at_k(similarity, query_labels, gallery_labels, 5),
        best.threshold, best.precision, best.recall, best.f1, best.f05, best.positives, best.negatives,
        tpr_at_fpr(similarity, query_labels, gallery_labels, 1e-3),
        tpr_at_fpr(similarity, query_labels, gallery_labels, 1e-4),
        decision_operating_point(similarity, query_labels, gallery_labels, calibration),
    )
    return result, rows


def parity(ref_gallery: np.ndarray, ref_queries: np.ndarray, gallery: np.ndarray, queries: np.ndarray) -> dict:
    """How closely an exported form reproduces the PyTorch embeddings of the same images."""
    ref, got = np.concatenate([ref_gallery, ref_queries]), np.concatenate([gallery, queries])
    cosine = np.sum(ref * got, axis=1) / np.maximum(np.linalg.norm(ref, axis=1) * np.linalg.norm(got, axis=1), 1e-12)
    top1_ref = np.argmax(ref_queries @ ref_gallery.T, axis=1)
    top1_got = np.argmax(queries @ gallery.T, axis=1)
    return {"mean_cosine": float(cosine.mean()), "min_cosine": float(cosine.min()),
            "top1_agreement": float((top1_ref == top1_got).mean())}


def parameters_and_flops(run_dir: Path) -> tuple[int, int]:
    """Parameter count and FLOPs (multiply-adds count 2) of one image at the model's input size."""
    import torch
    from torch.utils.flop_counter import FlopCounterMode

    from pocketvec.train.checkpoint import load_run

    model = load_run(run_dir).eval()
    size = model.config.preprocess.input_size
    counter = FlopCounterMode(display=False)
    with torch.inference_mode(), counter:
        model(torch.zeros(1, 3, size, size))
    return sum(p.numel() for p in model.parameters()), int(counter.get_total_flops())


def onnx_latencies(files: dict[str, Path], rounds: int = 15, runs_per_round: int = 10) -> dict[str, float]:
    """Median seconds per image of each ONNX file: onnxruntime, 1 thread, batch 1.

    The files take turns round by round, so a busy machine slows them alike and the ratios hold.
    """
    import onnxruntime as ort

    sessions, feeds = {}, {}
    for key, path in files.items():
        options = session_options(path, threads=1)  # the runtime's options: int8 weights folded at load
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
        shape = [1 if not isinstance(d, int) else d for d in session.get_inputs()[0].shape]
        feed = {session.get_inputs()[0].name: np.random.default_rng(0).uniform(0, 255, shape).astype(np.float32)}
        for _ in range(3):
            session.run(None, feed)  # warm-up
        sessions[key], feeds[key] = session, feed
    times: dict[str, list[float]] = {key: [] for key in files}
    for _ in range(rounds):
        for key, session in sessions.items():
            for _ in range(runs_per_round):
                start = time.perf_counter()
                session.run(None, feeds[key])
                times[key].append(time.perf_counter() - start)
    return {key: statistics.median(values) for key, values in times.items()}


TEXT_TIMED_PHOTOS = 20


def text_read_ms(photos: list[tuple[Path, PhotoRegion | None]], models: str) -> float:
    """The median time to read one photo's text (text verification: in its item's region, where one is given), one
    thread, over up to TEXT_TIMED_PHOTOS photos spread over `photos` (after one read to warm up)."""
    from pocketvec.runtime.printed_text import PHOTO_DETECT_SIDE, read_text, text_reader

    reader = text_reader(models, PHOTO_DETECT_SIDE)
    chosen = [photos[int(i)] for i in np.linspace(0, len(photos) - 1, min(len(photos), TEXT_TIMED_PHOTOS))]
    read_text(reader, *chosen[0])
    times = []
    for path, region in chosen:
        start = time.perf_counter()
        read_text(reader, path, region)
        times.append(time.perf_counter() - start)
    return float(np.median(times) * 1000)
