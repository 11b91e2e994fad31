"""The matcher: top-k labels with scores and the answer (best label or "unknown").

Scores are cosine similarities between unit vectors, reduced to one per label (the best row of
that label). The accept rule: best >= threshold AND best - best_other_label >= margin.
Brute force by default (see `runtime/search.py`); faiss optional for huge galleries.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from pocketvec.errors import GalleryError
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.metadata import AcceptRule
from pocketvec.runtime.search import make_index

UNKNOWN = "unknown"
DEFAULT_RULE = AcceptRule(threshold=0.5, margin=0.0, method="default")  # for a gallery never calibrated


def resolve_rule(gallery_rule: AcceptRule | None, model_rule: AcceptRule | None = None) -> tuple[AcceptRule, str]:
    """The rule that applies and where it came from: the gallery's, else the model's, else the default."""
    if gallery_rule is not None:
        return gallery_rule, "gallery"
    if model_rule is not None:
        return model_rule, "model"
    return DEFAULT_RULE, "default"


def uncalibrated_note(gallery: str = "GALLERY.pvg", model: str = "MODEL.onnx") -> str:
    """What to tell a user whose gallery (and model) carry no calibrated accept rule."""
    return (f"{gallery} has no calibrated accept rule; using the default (score >= {DEFAULT_RULE.threshold:.2f}, "
            f"margin >= {DEFAULT_RULE.margin:.2f}), whose precision is unknown. Calibrate it on labelled photos: "
            f"pocketvec data photos ITEMS --out photos/ && pocketvec calibrate {model} {gallery} --queries photos/")


@dataclass(frozen=True)
class Match:
    answer: str  # the accepted label, or UNKNOWN
    accepted: bool
    top: list[tuple[str, float]]  # (label, score), best first, one entry per label
    margin: float  # best - best other label (inf when the gallery holds one label)

    def to_dict(self) -> dict:
        margin = None if np.isinf(self.margin) else round(self.margin, 6)
        return {"answer": self.answer, "accepted": self.accepted, "margin": margin,
                "top": [{"label": label, "score": round(score, 6)} for label, score in self.top]}


def accepts(best: np.ndarray, second: np.ndarray, rule: AcceptRule) -> np.ndarray:
    """The accept rule on arrays of best and best-other-label scores."""
    return (best >= rule.threshold) & (best - second >= rule.margin)


class Matcher:
    """Match query embeddings against a gallery with one accept rule."""

    def __init__(self, gallery: Gallery, rule: AcceptRule | None = None, index: str = "auto") -> None:
        if gallery.count == 0:
            raise GalleryError("the gallery is empty: enroll items with `pocketvec gallery add` first")
        self.gallery = gallery
        self.rule = rule or gallery.accept_rule or DEFAULT_RULE
        self.labels = sorted(set(gallery.labels))
        column = {label: i for i, label in enumerate(self.labels)}
        self.row_label = np.array([column[label] for label in gallery.labels], dtype=np.int64)
        self.index = make_index(gallery.vectors, index)

    def match(self, queries: np.ndarray, top_k: int = 3) -> list[Match]:
        """One Match per query row (unit vectors, (Q, dim))."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        # Enough rows that the best-scoring top_k + 1 labels are certainly among them when labels
        # have one row each; with several rows per label, widen until k+1 labels are found.
        want = min(len(self.labels), top_k + 1)
        rows = min(self.gallery.count, want)
        results = []
        while True:
            scores, ids = self.index.search(queries, rows)
            labelled = [self._reduce(s, i) for s, i in zip(scores, ids, strict=True)]
            if rows >= self.gallery.count or all(len(lab) >= want for lab in labelled):
                break
            rows = min(self.gallery.count, rows * 4)
        for per_label in labelled:
            best_label, best = per_label[0]
            second = per_label[1][1] if len(per_label) > 1 else -np.inf
            ok = bool(accepts(np.array(best), np.array(second), self.rule))
            results.append(Match(best_label if ok else UNKNOWN, ok, per_label[:top_k], float(best - second)))
        return results

    def _reduce(self, scores: np.ndarray, ids: np.ndarray) -> list[tuple[str, float]]:
        """Row hits (best first) -> one (label, best score) per label, best first."""
        seen: dict[int, float] = {}
        for score, row in zip(scores, ids, strict=True):
            if row >= 0:
                seen.setdefault(int(self.row_label[row]), float(score))
        return [(self.labels[c], s) for c, s in seen.items()]
