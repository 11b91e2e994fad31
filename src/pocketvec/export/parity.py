"""Parity numbers and bars: one exported file against PyTorch fp32 (one reference): its embeddings and local maps
on the first pass (each image whole), and its answers as the runtime gives them (the photos zoomed to their item,
re-ranked, verified by their text, the accept rule)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import NamedTuple

import numpy as np

from pocketvec.runtime.accept_rule import rule_parts
from pocketvec.runtime.item_zoom import PhotoRegion
from pocketvec.runtime.local_rerank import LocalRerank, rerank

DEFAULT_THRESHOLD = 0.5  # used when the run has no calibrated accept rule yet (documented in docs/EXPORT.md)
# kind -> {metric: (bound, "max" | "min")}
BARS = {
    "fp32": {"max_abs_diff": (1e-4, "max"), "local_max_abs_diff": (1e-4, "max")},
    "fp16": {"mean_cosine": (0.9995, "min"), "local_mean_cosine": (0.9995, "min")},
    "int8": {"mean_cosine": (0.995, "min"), "min_cosine": (0.98, "min"),
             "top1_agreement": (0.99, "min"), "decision_agreement": (0.99, "min"),
             "local_mean_cosine": (0.995, "min"), "text_decision_agreement": (0.99, "min")},
}  # the local_ bars apply to the `local` output of a file with a local re-rank; text_ to `verify --text`
BARS["w8a8"] = BARS["int8"]
# the two references: the weights the run ships (rounded onto the int8 grid when `int8_grid` is on) and,
# for such a run, the trained float weights from before the rounding (checkpoint.FLOAT_WEIGHTS_FILE)
SHIPPED, TRAINED_FLOAT = "shipped", "trained float"
REFERENCES = {SHIPPED: "the shipped weights (rounded onto the int8 grid when the run has trained float weights)",
              TRAINED_FLOAT: "the trained float weights, before rounding onto the int8 grid"}
REGION_IOU = 0.9  # two regions of a photo agree at this intersection over union or more (reported, not a bar)


@dataclass
class ParityRow:
    model: str
    format: str
    kind: str  # fp32 | fp16 | int8 | w8a8
    images: int
    max_abs_diff: float
    mean_cosine: float
    min_cosine: float
    top1_agreement: float
    decision_agreement: float
    failures: list[str] = field(default_factory=list)
    reference: str = SHIPPED  # which PyTorch weights the file is compared with (REFERENCES)
    local_max_abs_diff: float | None = None  # the `local` output (local re-rank), None without one
    local_mean_cosine: float | None = None  # mean over images and locations
    text_decision_agreement: float | None = None  # decisions with text verification (`verify --text`), else None
    zoomed: float | None = None  # share of photos the file answers from their item's region; None: no zoom
    region_agreement: float | None = None  # share of photos whose region agrees with the reference's (REGION_IOU)

    @property
    def passed(self) -> bool:
        return not self.failures


class Outputs(NamedTuple):
    """What one model computes for the query images and the gallery images (local maps: None without)."""

    queries: np.ndarray
    gallery: np.ndarray
    query_locals: np.ndarray | None = None
    gallery_locals: np.ndarray | None = None


TextCheck = Callable[[np.ndarray], np.ndarray]  # (queries, gallery) scores -> the same verified by printed text


class Answers(NamedTuple):
    """What one model's answers are scored from: the photos' outputs as its matcher gets them (each zoomed to its
    item where the model re-ranks: runtime.zoomed_photos) with the gallery's, each photo's region (None: the whole
    photo), and text verification reading the photos in those regions (None: no text)."""

    outputs: Outputs
    regions: list[PhotoRegion | None]
    text: TextCheck | None = None


def regions_agree(a: PhotoRegion | None, b: PhotoRegion | None) -> bool:
    """Both photos whole, or both regions overlapping by REGION_IOU or more."""
    if a is None or b is None:
        return a is b
    (top, left, bottom, right), (top2, left2, bottom2, right2) = a.box, b.box
    inter = max(0, min(bottom, bottom2) - max(top, top2)) * max(0, min(right, right2) - max(left, left2))
    union = (bottom - top) * (right - left) + (bottom2 - top2) * (right2 - left2) - inter
    return inter >= REGION_IOU * union


def top1_with_margins(out: Outputs, leave_one_out: bool, local_rerank: LocalRerank | None,
                      text: TextCheck | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Best gallery index and (best score, margin over the second best) per query, as the matcher scores
    them: re-ranked by the local maps when the file has a local re-rank, then verified by the printed text
    with `text`."""
    scores = out.queries @ out.gallery.T
    if leave_one_out:
        np.fill_diagonal(scores, -np.inf)
    if local_rerank is not None:
        scores = rerank(scores, np.arange(scores.shape[1]), out.query_locals, out.gallery_locals, local_rerank)
    if text is not None:
        scores = text(scores)
    order = np.argsort(-scores, axis=1)
    best = scores[np.arange(len(scores)), order[:, 0]]
    second = scores[np.arange(len(scores)), order[:, 1]] if scores.shape[1] > 1 else np.full(len(scores), -1.0)
    return order[:, 0], np.stack([best, best - second], axis=1)


def decisions(out: Outputs, leave_one_out: bool, threshold: float, margin: float,
              local_rerank: LocalRerank | None = None, text: TextCheck | None = None) -> tuple[np.ndarray, np.ndarray]:
    top, stats = top1_with_margins(out, leave_one_out, local_rerank, text)
    over, clear = rule_parts(stats[:, 0], stats[:, 1], threshold, margin)
    return top, over & clear


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine between matching vectors along the last axis."""
    return np.sum(a * b, axis=-1) / (np.linalg.norm(a, axis=-1) * np.linalg.norm(b, axis=-1) + 1e-12)


def compare(name: str, fmt: str, kind: str, reference: Outputs, candidate: Outputs,
            answers: tuple[Answers, Answers], leave_one_out: bool, threshold: float, margin: float,
            reference_name: str = SHIPPED, local_rerank: LocalRerank | None = None) -> ParityRow:
    """One file against one PyTorch reference: the embeddings (and, with `local_rerank`, the file's, the local maps)
    of the first pass, `reference` and `candidate`; top-1 and decisions (with text verification where `answers`
    carry it) from the (reference's, file's) `answers`, as the matcher answers (re-ranked with `local_rerank`)."""
    ref, got = reference.queries, candidate.queries
    cosine = row_cosines(ref, got)
    ref_answers, cand_answers = answers
    ref_top, ref_accept = decisions(ref_answers.outputs, leave_one_out, threshold, margin, local_rerank)
    cand_top, cand_accept = decisions(cand_answers.outputs, leave_one_out, threshold, margin, local_rerank)
    row = ParityRow(name, fmt, kind, len(ref), float(np.abs(ref - got).max()),
                    float(cosine.mean()), float(cosine.min()), float((ref_top == cand_top).mean()),
                    float((ref_accept == cand_accept).mean()), reference=reference_name)
    if local_rerank is not None:
        ref_local, cand_local = reference.query_locals, candidate.query_locals
        row.local_max_abs_diff = float(np.abs(ref_local - cand_local).max())
        row.local_mean_cosine = float(np.mean(row_cosines(ref_local, cand_local)))
        row.zoomed = float(np.mean([region is not None for region in cand_answers.regions]))
        row.region_agreement = float(np.mean([regions_agree(a, b) for a, b in
                                              zip(ref_answers.regions, cand_answers.regions, strict=True)]))
    if cand_answers.text is not None and ref_answers.text is not None:
        ref_accept_text = decisions(ref_answers.outputs, leave_one_out, threshold, margin, local_rerank,
                                    ref_answers.text)[1]
        cand_accept_text = decisions(cand_answers.outputs, leave_one_out, threshold, margin, local_rerank,
                                     cand_answers.text)[1]
        row.text_decision_agreement = float((ref_accept_text == cand_accept_text).mean())
    for metric, (bound, side) in BARS[kind].items():
        value = getattr(row, metric)
        if value is None:
            continue
        if not np.isfinite(value) or (value > bound if side == "max" else value < bound):
            row.failures.append(f"{metric} {value:.6g} {'>' if side == 'max' else '<'} {bound:g}")
    return row


def row_dict(row: ParityRow) -> dict:
    return {**asdict(row), "passed": row.passed}
