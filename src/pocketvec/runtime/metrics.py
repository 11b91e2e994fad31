"""Retrieval metrics over query x gallery cosine similarities (numpy only).

Galleries may hold several rows per label: scores are reduced to one per (query, label) by max,
so every metric here is label-level, as the matcher answers.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def label_scores(similarity: np.ndarray, gallery_labels: list[str]) -> tuple[list[str], np.ndarray]:
    """(Q, G) row similarities -> sorted unique labels and (Q, L) best score per label."""
    labels = sorted(set(gallery_labels))
    column = {label: i for i, label in enumerate(labels)}
    index = np.array([column[label] for label in gallery_labels])
    scores = np.full((similarity.shape[0], len(labels)), -np.inf, dtype=np.float64)
    np.maximum.at(scores.T, index, similarity.T.astype(np.float64))
    return labels, scores


def best_two(similarity: np.ndarray, gallery_labels: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per query: the best label, its score and the best other label's score (-inf with one label)."""
    labels, scores = label_scores(similarity, gallery_labels)
    order = np.argsort(-scores, axis=1, kind="stable")
    rows = np.arange(len(scores))
    second = scores[rows, order[:, 1]] if scores.shape[1] > 1 else np.full(len(scores), -np.inf)
    return np.asarray(labels)[order[:, 0]], scores[rows, order[:, 0]], second


def positive_mask(query_labels: list[str], labels: list[str]) -> np.ndarray:
    return np.asarray(query_labels)[:, None] == np.asarray(labels)[None, :]


def recall_at_k(similarity: np.ndarray, query_labels: list[str], gallery_labels: list[str], k: int = 1) -> float:
    """Fraction of queries whose true label is among the k best-scoring labels."""
    labels, scores = label_scores(similarity, gallery_labels)
    top = np.argsort(-scores, axis=1, kind="stable")[:, :k]
    hits = positive_mask(query_labels, labels)[np.arange(len(query_labels))[:, None], top].any(axis=1)
    return float(hits.mean()) if len(hits) else 0.0


@dataclass(frozen=True)
class SweepRow:
    threshold: float
    positives: int  # positive pairs (query, its own label)
    negatives: int  # negative pairs (query, any other label)
    true_accepts: int
    false_accepts: int
    precision: float
    recall: float
    f1: float
    f05: float


def _fbeta(precision: float, recall: float, beta: float) -> float:
    b2 = beta * beta
    denom = b2 * precision + recall
    return (1 + b2) * precision * recall / denom if denom > 0 else 0.0


def pair_scores(similarity: np.ndarray, query_labels: list[str], gallery_labels: list[str]):
    """Positive and negative pair scores, label-level."""
    labels, scores = label_scores(similarity, gallery_labels)
    mask = positive_mask(query_labels, labels)
    return scores[mask], scores[~mask]


def pair_sweep(
    similarity: np.ndarray, query_labels: list[str], gallery_labels: list[str], step: float = 0.01
) -> list[SweepRow]:
    """Threshold sweep over all query x label pairs: accept a pair when its score >= threshold."""
    pos, neg = pair_scores(similarity, query_labels, gallery_labels)
    pos_sorted, neg_sorted = np.sort(pos), np.sort(neg)
    rows = []
    for threshold in np.round(np.arange(-1.0, 1.0 + step / 2, step), 6):
        tp = int(len(pos_sorted) - np.searchsorted(pos_sorted, threshold, side="left"))
        fp = int(len(neg_sorted) - np.searchsorted(neg_sorted, threshold, side="left"))
        precision = tp / (tp + fp) if tp + fp else 1.0
        recall = tp / len(pos) if len(pos) else 0.0
        rows.append(SweepRow(float(threshold), len(pos), len(neg), tp, fp, precision, recall,
                             _fbeta(precision, recall, 1.0), _fbeta(precision, recall, 0.5)))
    return rows


def best_f1(rows: list[SweepRow]) -> SweepRow:
    return max(rows, key=lambda r: (r.f1, r.threshold))


def tpr_at_fpr(similarity: np.ndarray, query_labels: list[str], gallery_labels: list[str], fpr: float) -> float:
    """True-positive rate at the strictest threshold whose false-positive rate is <= fpr."""
    pos, neg = pair_scores(similarity, query_labels, gallery_labels)
    if not len(pos) or not len(neg):
        return 0.0
    allowed = int(np.floor(fpr * len(neg)))  # negatives that may score above the threshold
    neg_desc = np.sort(neg)[::-1]
    threshold = neg_desc[allowed] if allowed < len(neg_desc) else -np.inf
    return float((pos > threshold).mean())
