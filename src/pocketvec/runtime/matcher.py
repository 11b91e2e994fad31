"""The matcher: top-k labels with scores and the answer (best label or "unknown").

Scores are cosine similarities between unit vectors, reduced to one per label (the best row of
that label); for a model with a local re-rank, the best labels' scores re-ranked by their local maps
(`runtime/local_rerank.py`) and the others out of the running; with printed text, verified by it
(`runtime/text_verify.py`). The accept rule (`runtime/accept_rule.py`): best >= threshold AND
best - best_other_label >= margin. The index (`runtime/search.py`: exact brute force or int8 scan, faiss flat, or
faiss IVF-PQ) finds each query's candidate rows; only those are scored, so a match costs the index's scan plus
a few candidates' work, whatever the gallery's size.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np

from pocketvec.errors import GalleryError
from pocketvec.runtime.accept_rule import accepts
from pocketvec.runtime.gallery import Gallery
from pocketvec.runtime.local_rerank import LocalRerank, label_ids, rerank, top_label_rows
from pocketvec.runtime.metadata import AcceptRule, ModelMetadata
from pocketvec.runtime.printed_text import PhotoTexts
from pocketvec.runtime.search import SearchIndex, dot_rows, exact_dots, make_index, score_error
from pocketvec.runtime.text_verify import TextVerify, labelled_words, verify_rows

UNKNOWN = "unknown"
DEFAULT_RULE = AcceptRule(threshold=0.5, margin=0.0, method="default")  # for a gallery never calibrated
CANDIDATE_ROWS = 64  # the rows asked of the index first (then 4x, 16x, ... until the labels are covered)


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


class Scorer:
    """The scores the matcher answers from, for any set of a gallery's rows: exact cosines (`exact_dots`),
    re-ranked when the model has a local re-rank, then verified by the printed text when the gallery keeps its
    items' text and the photos are given. `scores` applies it to every row; the Matcher to the candidate rows
    the index found, which hold every row these scores can rank among the labels it answers with."""

    def __init__(self, gallery: Gallery, local_rerank: LocalRerank | None = None) -> None:
        self.gallery, self.local_rerank = gallery, local_rerank
        # the rows' local maps as the re-rank reads them: a compact gallery's decoded with the model's codebook
        self.maps = gallery.locals
        if gallery.compact and local_rerank is not None:
            self.maps = gallery.locals.decoder(local_rerank.codebook)
        self.labels = sorted(set(gallery.labels))
        self.row_label = label_ids(gallery.labels)  # an index into self.labels (both sorted by code point)
        self.label_words = None if gallery.texts is None else labelled_words(tuple(gallery.labels),
                                                                           tuple(gallery.texts))[1]

    def check(self, query_locals: np.ndarray | None) -> None:
        if self.local_rerank is not None and (query_locals is None or self.gallery.locals is None):
            raise GalleryError("the model re-ranks by local maps: the queries and the gallery both need them "
                               f"(queries: {'yes' if query_locals is not None else 'no'}, "
                               f"gallery: {'yes' if self.gallery.locals is not None else 'no'})")

    def rescored(self, cosines: np.ndarray, rows: np.ndarray | None, query_locals: np.ndarray | None,
                 read: Callable[[int], str] | None, settings: TextVerify) -> np.ndarray:
        """(Q, R) exact cosines of the rows `rows` (ascending; None: every row) -> the matcher's scores of them."""
        row_label = self.row_label if rows is None else self.row_label[rows]
        if self.local_rerank is not None:
            self.check(query_locals)
            cosines = rerank(cosines, row_label, query_locals, self.maps, self.local_rerank, rows)
        if read is None or self.label_words is None:
            return cosines
        return verify_rows(cosines, row_label, self.label_words, read, settings)[0]


def scores(gallery: Gallery, queries: np.ndarray, query_locals: np.ndarray | None = None,
           local_rerank: LocalRerank | None = None, photo_texts: PhotoTexts | None = None) -> np.ndarray:
    """(Q, rows) scores the matcher answers from, for every row (`Scorer`): what calibration and evaluation
    count."""
    scorer = Scorer(gallery, local_rerank)
    scorer.check(query_locals)
    cosines = dot_rows(np.atleast_2d(np.asarray(queries, dtype=np.float32)), gallery.vectors)
    read = None if photo_texts is None else photo_texts.read
    return scorer.rescored(cosines, None, query_locals, read, photo_texts.settings if photo_texts else TextVerify())


class Matcher:
    """Match query embeddings (and local maps, for a model with a local re-rank) against a gallery with
    one accept rule.

    Per query, the index finds candidate rows, widened until they hold the labels the answer needs (`_needed`)
    and, for an exact index, provably every row that could rank among them; only those rows are scored
    (`Scorer`) and grouped by label. The answer is the one `scores` gives over every row. An approximate index
    (IvfPqIndex) answers from the rows it finds."""

    def __init__(self, gallery: Gallery, rule: AcceptRule | None = None, index: str | SearchIndex = "auto",
                 local_rerank: LocalRerank | None = None) -> None:
        if gallery.count == 0:
            raise GalleryError("the gallery is empty: enroll items with `pocketvec gallery add` first")
        self.gallery = gallery
        self.rule = rule or gallery.accept_rule or DEFAULT_RULE
        self.local_rerank = local_rerank
        self.scorer = Scorer(gallery, local_rerank)
        self.labels = self.scorer.labels
        self.index = make_index(gallery.vectors, index) if isinstance(index, str) else index

    @classmethod
    def for_model(cls, metadata: ModelMetadata, gallery: Gallery, rule: AcceptRule | None = None,
                  index: str | SearchIndex = "auto") -> Matcher:
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
        self.scorer.check(query_locals)
        settings = photo_texts.settings if photo_texts is not None else TextVerify()
        shown = max(top_k, 2)  # the answer needs the best two labels; the list shows top_k
        results = []
        for q, (rows, cosines) in enumerate(self.candidates(queries, self._needed(shown, photo_texts, settings))):
            read = None if photo_texts is None else (lambda _, q=q: photo_texts.read(q))
            maps = None if query_locals is None else query_locals[q : q + 1]
            scored = self.scorer.rescored(cosines[None], rows, maps, read, settings)[0]
            per_label = self._labelled(scored, rows, shown)
            best_label, best = per_label[0]
            second = per_label[1][1] if len(per_label) > 1 else -np.inf
            ok = bool(accepts(np.array(best), np.array(second), self.rule))
            results.append(Match(best_label if ok else UNKNOWN, ok, per_label[:top_k], float(best - second)))
        return results

    def match_embedded(self, found: Embedded, top_k: int = 3, photo_texts: PhotoTexts | None = None) -> list[Match]:
        """`match` on what an engine embedded (an EmbedResult, a LabelledEmbeddings): its embeddings and,
        for a model with a local re-rank, its local maps."""
        return self.match(found.embeddings, top_k, found.locals, photo_texts)

    def candidate_rows(self, queries: np.ndarray, query_locals: np.ndarray | None = None) -> list[np.ndarray]:
        """Per query, the best row of each label still in the running after the re-rank (the image scores, no
        text), best first: the candidates whose maps locate the item (pocketvec.runtime.zoomed_photos)."""
        queries = np.atleast_2d(np.asarray(queries, dtype=np.float32))
        self.scorer.check(query_locals)
        needed = self._needed(2, None, TextVerify())
        out = []
        for q, (rows, cosines) in enumerate(self.candidates(queries, needed)):
            maps = None if query_locals is None else query_locals[q : q + 1]
            scored = self.scorer.rescored(cosines[None], rows, maps, None, TextVerify())[0]
            best = top_label_rows(scored, self.scorer.row_label[rows], needed)
            out.append(rows[best[scored[best] > -np.inf]])
        return out

    def _needed(self, shown: int, photo_texts: PhotoTexts | None, settings: TextVerify) -> int:
        """How many labels, best by cosine, the answer is drawn from: the re-rank's top_k (the only rows it
        leaves in the running); without it, the labels shown, plus the text verification's candidates (which
        can only fall behind)."""
        if self.local_rerank is not None:
            needed = self.local_rerank.top_k
        else:
            needed = shown + (settings.candidates if photo_texts is not None else 0)
        return min(needed, len(self.labels))

    def candidates(self, queries: np.ndarray, needed: int) -> list[tuple[np.ndarray, np.ndarray]]:
        """Per query, (rows ascending, their exact cosines): the index's top rows, widened until they hold
        `needed` labels and (exact index) the needed-th best label outscores, by more than the index's score
        error, every row left out; then they hold every row scoring at least that label's best, ties included."""
        count = self.gallery.count
        wanted = min(count, max(CANDIDATE_ROWS, 4 * needed))
        pending, out = np.arange(len(queries)), [None] * len(queries)
        error = score_error(queries)
        while len(pending):
            found, ids = self.index.search(queries[pending], wanted)
            unfinished = []
            for q, row_scores, row_ids in zip(pending, found, ids, strict=True):
                rows = np.sort(row_ids[row_ids >= 0])
                cosines = exact_dots(queries[q : q + 1], self.gallery.vectors[rows])[0]
                kth = self._kth_label_score(cosines, rows, needed)
                everything = wanted >= count or len(rows) < wanted  # the whole gallery, or all the index can find
                if everything or (kth is not None and (not self.index.exact or kth > row_scores[-1] + error[q])):
                    out[q] = (rows, cosines)
                else:
                    unfinished.append(q)
            pending = np.array(unfinished, dtype=np.int64)
            wanted = min(count, wanted * 4)
        return out

    def _kth_label_score(self, cosines: np.ndarray, rows: np.ndarray, k: int) -> float | None:
        """The k-th best label's best cosine among these rows, None when they hold fewer than k labels."""
        best = top_label_rows(cosines, self.scorer.row_label[rows], k)
        return None if len(best) < k else float(cosines[best[k - 1]])

    def _labelled(self, scored: np.ndarray, rows: np.ndarray, shown: int) -> list[tuple[str, float]]:
        """(label, best score), best first (ties: the lower row first), of the `shown` best labels in the running."""
        best = top_label_rows(scored, self.scorer.row_label[rows], shown)
        return [(self.labels[self.scorer.row_label[rows[i]]], float(scored[i])) for i in best if scored[i] > -np.inf]
