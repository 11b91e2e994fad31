"""Evaluation of a model on a gallery and labelled query photos: retrieval metrics (Recall@k, the
pair threshold sweep, TPR at low FPR) and the decisions a user meets under the accept rule.

Query photos whose label is not in the gallery are distractors: they are left out of the
retrieval metrics (they have no right label to retrieve) and their right answer is "unknown".
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pocketvec.errors import DatasetError
from pocketvec.runtime.accept_rule import accepts
from pocketvec.runtime.engines import Engine
from pocketvec.runtime.enroll import LabelledEmbeddings, build_gallery, embed_labelled, open_gallery, query_layout
from pocketvec.runtime.item_zoom import ItemZoom
from pocketvec.runtime.matcher import resolve_rule, scores
from pocketvec.runtime.metadata import AcceptRule
from pocketvec.runtime.metrics import SweepRow, best_f1, best_two, pair_sweep, recall_at_k, tpr_at_fpr
from pocketvec.runtime.printed_text import photo_texts, wanted_models
from pocketvec.runtime.zoomed_photos import zoom_to_items

FPRS = (1e-3, 1e-4)
GALLERY_SUFFIX = ".pvg"


@dataclass(frozen=True)
class Decisions:
    """One answer per photo under `rule`, counted as a user meets them."""

    rule: AcceptRule
    rule_source: str  # "gallery", "model" or "default" (never calibrated)
    item_photos: int  # photos of enrolled items
    distractor_photos: int  # photos whose right answer is "unknown"
    accepted: int  # photos answered with a label
    correct: int  # ... with the right label
    distractors_rejected: int  # distractor photos answered "unknown"

    @property
    def precision(self) -> float:
        """Correct answers / answers given (1.0 when nothing is answered)."""
        return self.correct / self.accepted if self.accepted else 1.0

    @property
    def recall(self) -> float:
        """Correct answers / photos of enrolled items."""
        return self.correct / self.item_photos if self.item_photos else 0.0

    @property
    def unknown_accuracy(self) -> float | None:
        """Distractor photos answered "unknown" / distractor photos (None without distractors)."""
        return self.distractors_rejected / self.distractor_photos if self.distractor_photos else None

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "precision": self.precision, "recall": self.recall,
                "unknown_accuracy": self.unknown_accuracy}


def count_decisions(similarity: np.ndarray, query_labels: list[str], gallery_labels: list[str], rule: AcceptRule,
                    rule_source: str) -> Decisions:
    """The accept rule applied to every query row of `similarity` (queries x gallery rows)."""
    top_label, best, second = best_two(similarity, gallery_labels)
    answered = accepts(best, second, rule)
    truth = np.asarray(query_labels)
    enrolled = np.isin(truth, list(set(gallery_labels)))
    return Decisions(rule, rule_source, int(enrolled.sum()), int((~enrolled).sum()), int(answered.sum()),
                     int((answered & (top_label == truth)).sum()), int((~answered & ~enrolled).sum()))


@dataclass
class EvalReport:
    recall_at_1: float  # over photos of enrolled items only
    recall_at_5: float
    sweep: list[SweepRow]
    best: SweepRow
    tpr_at_fpr: dict[float, float]
    decisions: Decisions
    gallery_labels: list[str]
    queries: LabelledEmbeddings
    failures: list  # ImageLoadError of gallery images (when built from a folder) and queries

    def to_dict(self) -> dict[str, Any]:
        """The numbers, for --json."""
        return {"recall_at_1": self.recall_at_1, "recall_at_5": self.recall_at_5,
                "decisions": self.decisions.to_dict(), "pair_best_f1": asdict(self.best),
                "tpr_at_fpr": {f"{k:g}": v for k, v in self.tpr_at_fpr.items()},
                "query_photos": len(self.queries.labels), "gallery_rows": len(self.gallery_labels),
                "gallery_labels": len(set(self.gallery_labels)),
                "unreadable": [{"image": str(e.path), "problem": e.problem} for e in self.failures]}


def evaluate(engine: Engine, gallery: str | Path, queries: str | Path, batch_size: int = 32,
             progress: bool = False, text: bool | None = None,
             item_zoom: ItemZoom | None = ItemZoom()) -> EvalReport:
    """`gallery`: a .pvg file made by this model, or a labelled image folder / CSV to enroll now (its items'
    text read with `text`). `text`: text verification (None: where the gallery keeps texts); `item_zoom`: the
    photos zoomed to their item (pocketvec.runtime.item_zoom) before matching (None: not)."""
    gallery = Path(gallery)
    failures = []
    if gallery.suffix.lower() == GALLERY_SUFFIX and not gallery.is_dir():
        stored = open_gallery(engine, gallery)
        rule, source = resolve_rule(stored.accept_rule, engine.metadata.accept_rule)
    else:  # enrolled now: the only rule there can be is the model's
        stored, report = build_gallery(engine, gallery, batch_size=batch_size, progress=progress,
                                       text_models=wanted_models(text))
        failures += report.failures
        rule, source = resolve_rule(None, engine.metadata.accept_rule)
    found = embed_labelled(engine, queries, batch_size, progress, query_layout(queries), query=True)
    found, regions = zoom_to_items(engine, stored, found, found.paths, item_zoom)
    failures += found.failures
    if not len(found.labels):
        raise DatasetError(f"{queries}: nothing to evaluate: no query photo could be loaded")
    similarity = scores(stored, found.embeddings, found.locals, engine.metadata.local_rerank,
                        photo_texts(stored, found.paths, text, regions))
    decisions = count_decisions(similarity, found.labels, stored.labels, rule, source)
    items = np.isin(found.labels, list(set(stored.labels)))
    if not items.any():
        raise DatasetError(f"{queries}: no query photo shows an enrolled item: label the photos' folders with "
                           f"gallery labels (e.g. {sorted(set(stored.labels))[:3]})")
    item_sim, item_labels = similarity[items], [label for label, keep in zip(found.labels, items, strict=True) if keep]
    rows = pair_sweep(similarity, found.labels, stored.labels)
    args = (item_sim, item_labels, stored.labels)
    return EvalReport(recall_at_k(*args, 1), recall_at_k(*args, 5), rows, best_f1(rows),
                      {f: tpr_at_fpr(similarity, found.labels, stored.labels, f) for f in FPRS}, decisions,
                      list(stored.labels), found, failures)
