"""The matcher: top-k labels with scores and the answer (best label or "unknown").

Scores are cosine similarities between unit vectors, reduced to one per label (the best row of
that label); for a model with a local re-rank, the best labels' scores re-ranked by their local maps
(`runtime/local_rerank.py`) and the others out of the running. The accept rule (`runtime/accept_rule.py`):
best >= threshold AND best - best_other_label >= margin. Brute force by default (see `runtime/search.py`); faiss
optional for huge galleries (plain cosine matching only).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pocketvec.errors import GalleryError
from pocketvec.runtime.accept_rule import accepts
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.local_rerank import LocalRerank, label_ids, rerank
from pocketvec.runtime.metadata import AcceptRule, ModelMetadata
from pocketvec.runtime.printed_text import PhotoTexts
from pocketvec.runtime.search import dot_rows, make_index
from pocketvec.runtime.text_verify import verify_labelled

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


class Embedded(Protocol):
    """What an engine embedded for matching (an EmbedResult, a LabelledEmbeddings)."""

    embeddings: np.ndarray  # (N, dim) unit vectors
    locals: np.ndarray | None  # (N, locations, channels) for a model with a local re-rank


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


def scores(gallery: Gallery, queries: np.ndarray, query_locals: np.ndarray | None = None,
           local_rerank: LocalRerank | None = None, photo_texts: PhotoTexts | None = None) -> np.ndarray:
    """(Q, rows) scores the matcher answers from: cosines, re-ranked when the model has a local re-rank, then
    verified by the printed text when the gallery keeps its items' text and the photos are given."""
    cosines = dot_rows(np.atleast_2d(np.asarray(queries, dtype=np.float32)), gallery.vectors)
    if local_rerank is not None:
        if query_locals is None or gallery.locals is None:
            raise GalleryError("the model re-ranks by local maps: the queries and the gallery both need them "
                               f"(queries: {'yes' if query_locals is not None else 'no'}, "
                               f"gallery: {'yes' if gallery.locals is not None else 'no'})")
        cosines = rerank(cosines, label_ids(gallery.labels), query_locals, gallery.locals, local_rerank)
    if photo_texts is None or gallery.texts is None:
        return cosines
    return verify_labelled(cosines, gallery.labels, gallery.texts, photo_texts.read, photo_texts.settings)[0]


class Matcher:
    """Match query embeddings (and local maps, for a model with a local re-rank) against a gallery with
    one accept rule."""

    def __init__(self, gallery: Gallery, rule: AcceptRule | None = None, index: str = "auto",
                 local_rerank: LocalRerank | None = None) -> None:
        if gallery.count == 0:
            raise GalleryError("the gallery is empty: enroll items with `pocketvec gallery add` first")
        self.gallery = gallery
        self.rule = rule or gallery.accept_rule or DEFAULT_RULE
        self.local_rerank = local_rerank
        self.labels = sorted(set(gallery.labels))
        column = {label: i for i, label in enumerate(self.labels)}
        self.row_label = np.array([column[label] for label in gallery.labels], dtype=np.int64)
        self.index = make_index(gallery.vectors, index)

    @classmethod
    def for_model(cls, metadata: ModelMetadata, gallery: Gallery, rule: AcceptRule | None = None,
                  index: str = "auto") -> Matcher:
        """The matcher that answers as the model whose `metadata` is given: its local re-rank (if any) wired
        in. `rule`: None for the gallery's (else the default)."""
        return cls(gallery, rule, index, local_rerank=metadata.local_rerank)

    def match(self, queries: np.ndarray, top_k: int = 3, query_locals: np.ndarray | None = None,
              photo_texts: PhotoTexts | None = None) -> list[Match]:
        """One Match per query row (unit vectors, (Q, dim); with their local maps (Q, locations, channels)
        when the matcher re-ranks; with the photos to read, `photo_texts`, when the gallery keeps texts)."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        if photo_texts is not None and self.gallery.texts is None:
            photo_texts = None
        if self.local_rerank is not None or photo_texts is not None:
            reranked = scores(self.gallery, queries, query_locals, self.local_rerank, photo_texts)
            order = np.argsort(-reranked, axis=1, kind="stable")
            labelled = [[(label, s) for label, s in self._reduce(row[o], o) if s > -np.inf]
                        for row, o in zip(reranked, order, strict=True)]
        else:
            labelled = self._searched(queries, top_k)
        results = []
        for per_label in labelled:
            best_label, best = per_label[0]
            second = per_label[1][1] if len(per_label) > 1 else -np.inf
            ok = bool(accepts(np.array(best), np.array(second), self.rule))
            results.append(Match(best_label if ok else UNKNOWN, ok, per_label[:top_k], float(best - second)))
        return results

    def match_embedded(self, found: Embedded, top_k: int = 3, photo_texts: PhotoTexts | None = None) -> list[Match]:
        """`match` on what an engine embedded (an EmbedResult, a LabelledEmbeddings): its embeddings and,
        for a model with a local re-rank, its local maps."""
        return self.match(found.embeddings, top_k, found.locals, photo_texts)

    def _searched(self, queries: np.ndarray, top_k: int) -> list[list[tuple[str, float]]]:
        """(label, cosine) of the top_k + 1 best labels of each query, from the index."""
        # Enough rows that the best-scoring top_k + 1 labels are certainly among them when labels
        # have one row each; with several rows per label, widen until k+1 labels are found.
        want = min(len(self.labels), top_k + 1)
        rows = min(self.gallery.count, want)
        while True:
            found, ids = self.index.search(queries, rows)
            labelled = [self._reduce(s, i) for s, i in zip(found, ids, strict=True)]
            if rows >= self.gallery.count or all(len(lab) >= want for lab in labelled):
                return labelled
            rows = min(self.gallery.count, rows * 4)

    def _reduce(self, scores: np.ndarray, ids: np.ndarray) -> list[tuple[str, float]]:
        """Row hits (best first) -> one (label, best score) per label, best first."""
        seen: dict[int, float] = {}
        for score, row in zip(scores, ids, strict=True):
            if row >= 0:
                seen.setdefault(int(self.row_label[row]), float(score))
        return [(self.labels[c], s) for c, s in seen.items()]
