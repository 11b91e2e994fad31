"""Retrieval evaluation of a model on a gallery folder and a labelled query folder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from pocketvec.errors import DatasetError
from pocketvec.runtime.engines import Engine
from pocketvec.runtime.enroll import LabelledEmbeddings, embed_labelled
from pocketvec.runtime.metrics import SweepRow, best_f1, pair_sweep, recall_at_k, tpr_at_fpr

FPRS = (1e-3, 1e-4)


@dataclass
class EvalReport:
    recall_at_1: float
    recall_at_5: float
    sweep: list[SweepRow]
    best: SweepRow
    tpr_at_fpr: dict[float, float]
    gallery: LabelledEmbeddings
    queries: LabelledEmbeddings


def evaluate(engine: Engine, gallery_dir: str | Path, queries: str | Path, batch_size: int = 32,
             progress: bool = True) -> EvalReport:
    gallery = embed_labelled(engine, gallery_dir, batch_size, progress)
    found = embed_labelled(engine, queries, batch_size, progress)
    if not len(gallery.labels) or not len(found.labels):
        raise DatasetError(f"nothing to evaluate: {len(gallery.labels)} gallery and "
                           f"{len(found.labels)} query images loaded")
    similarity = found.embeddings @ gallery.embeddings.T
    rows = pair_sweep(similarity, found.labels, gallery.labels)
    args = (similarity, found.labels, gallery.labels)
    return EvalReport(recall_at_k(*args, 1), recall_at_k(*args, 5), rows, best_f1(rows),
                      {f: tpr_at_fpr(*args, f) for f in FPRS}, gallery, found)
