"""Calibrating the accept rule on labelled query photos of the gallery items.

Two views, both reported:
1. Pair level (the seed method): every query x label pair is a yes/no decision; sweep the cosine
   threshold in 0.01 steps (metrics.pair_sweep) and take the best-F1 threshold. Its precision is
   diluted by the many easy negative pairs, so it is not the precision a user meets.
2. Decision level, as the app answers: one answer per photo. precision = correct accepted answers /
   accepted answers; recall = correct accepted answers / queries of enrolled items. Sweep threshold
   (0.01 steps) x margin (0.00..0.30, 0.01 steps); choose the rule with the highest recall at the
   target precision (default 0.99), or the best F1 when asked.
Queries whose label is not in the gallery (distractors) are correct only when rejected.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pocketvec.errors import ConfigError, GalleryError
from pocketvec.runtime.accept_rule import rule_parts
from pocketvec.runtime.metadata import AcceptRule
from pocketvec.runtime.metrics import SweepRow, best_f1, best_two, pair_sweep

THRESHOLDS = np.round(np.arange(-1.0, 1.0 + 1e-9, 0.01), 2)
MARGINS = np.round(np.arange(0.0, 0.30 + 1e-9, 0.01), 2)
PAIR_LEVEL_WARNING = (
    "Pair-level precision counts every query x label pair; the many easy negative pairs inflate it. "
    "It is not the precision a user meets: that is the decision level (correct accepted answers / "
    "accepted answers), which the chosen rule is calibrated on."
)


@dataclass(frozen=True)
class DecisionRow:
    threshold: float
    margin: float
    accepted: int
    correct: int
    precision: float
    recall: float
    f1: float


@dataclass(frozen=True)
class Calibration:
    pair_rows: list[SweepRow]
    pair_best: SweepRow
    decision_rows: list[DecisionRow]  # the best row per margin, for display
    chosen: DecisionRow
    rule: AcceptRule
    target_reached: bool
    queries: int
    distractors: int


def decision_grid(similarity: np.ndarray, query_labels: list[str], gallery_labels: list[str]):
    """Accepted and correct counts for every (threshold, margin): arrays of shape (T, M)."""
    top_label, best, second = best_two(similarity, gallery_labels)
    right = top_label == np.asarray(query_labels)
    gap = best - second
    # The accept rule's own two tests (runtime/accept_rule.py), broadcast: the grid counts what the matcher answers.
    passes_t, passes_m = rule_parts(best[None, :], gap[None, :], THRESHOLDS[:, None], MARGINS[:, None])  # (T|M, Q)
    accepted = passes_t.astype(np.int64) @ passes_m.T.astype(np.int64)  # (T, M)
    correct = (passes_t & right[None, :]).astype(np.int64) @ passes_m.T.astype(np.int64)
    return accepted, correct


def calibrate(
    similarity: np.ndarray, query_labels: list[str], gallery_labels: list[str],
    target_precision: float = 0.99, objective: str = "recall_at_precision",
) -> Calibration:
    """Both sweeps; the chosen rule maximises recall at `target_precision` (or F1: objective='f1')."""
    if objective not in ("recall_at_precision", "f1"):
        raise ConfigError(f"objective must be one of ['f1', 'recall_at_precision']. Got {objective!r}.")
    if not 0 < target_precision <= 1:
        raise ConfigError(f"target precision must be in (0, 1]. Got {target_precision!r}.")
    if len(query_labels) == 0 or similarity.shape[1] == 0:
        raise GalleryError("calibration needs at least one query and a non-empty gallery")
    enrolled = set(gallery_labels)
    positives = sum(label in enrolled for label in query_labels)
    if positives == 0:
        raise GalleryError("no calibration query shows an enrolled item: label the queries with gallery labels")
    accepted, correct = decision_grid(similarity, query_labels, gallery_labels)
    precision = np.where(accepted > 0, correct / np.maximum(accepted, 1), 1.0)
    recall = correct / positives
    f1 = np.where(precision + recall > 0, 2 * precision * recall / np.maximum(precision + recall, 1e-12), 0.0)
    reached = bool(((precision >= target_precision) & (accepted > 0)).any())
    if objective == "f1":
        key = (f1, precision)
    elif reached:
        key = (np.where(precision >= target_precision, recall, -1.0), precision)
    else:  # the most precise rule that still answers something (the output says the target was missed)
        key = (np.where(accepted > 0, precision, -1.0), recall)
    # Lexicographic best; ties go to the stricter rule (higher threshold, then higher margin).
    flat = np.lexsort((MARGINS[None, :].repeat(len(THRESHOLDS), 0).ravel(),
                       THRESHOLDS[:, None].repeat(len(MARGINS), 1).ravel(),
                       key[1].ravel(), key[0].ravel()))[-1]
    t, m = np.unravel_index(flat, accepted.shape)

    def row(ti: int, mi: int) -> DecisionRow:
        return DecisionRow(float(THRESHOLDS[ti]), float(MARGINS[mi]), int(accepted[ti, mi]), int(correct[ti, mi]),
                           float(precision[ti, mi]), float(recall[ti, mi]), float(f1[ti, mi]))

    chosen = row(t, m)
    per_margin = []
    for mi in range(len(MARGINS)):  # for display: each margin's best threshold by the same key
        ti = int(np.lexsort((THRESHOLDS, key[1][:, mi], key[0][:, mi]))[-1])
        per_margin.append(row(ti, mi))
    rule = AcceptRule(threshold=chosen.threshold, margin=chosen.margin, precision=round(chosen.precision, 6),
                      recall=round(chosen.recall, 6), target_precision=target_precision,
                      method="decision" if objective == "recall_at_precision" else "decision_f1")
    pair_rows = pair_sweep(similarity, query_labels, gallery_labels)
    return Calibration(pair_rows, best_f1(pair_rows), per_margin, chosen, rule, reached or objective == "f1",
                       len(query_labels), len(query_labels) - positives)
