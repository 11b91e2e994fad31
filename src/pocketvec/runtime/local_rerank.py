"""The local re-rank: the best few labels by cosine, re-scored by how well each one's local marks are found.

A model exported with a local re-rank has a second output, `local`: the backbone's stride-16 feature map
as (locations, channels), each location L2-normalised. A gallery row keeps its item's map. For one photo,
the `top_k` best labels by cosine (each label's best row) are re-scored

    score = cosine - weight x (best local - local),  local = mean over the row's locations of the best
                                                       cosine with any location of the photo

(gallery-to-photo chamfer similarity: a mark the item has and the photo lacks finds no match; background
in the photo costs nothing). Every other row drops to -inf, out of the running (as a second label in a
one-label gallery). The accept rule then applies
to these scores as it does to plain cosines. docs/bench/enroll.md (sixth round) has the measurements.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from pocketvec.errors import ConfigError
from pocketvec.runtime.checks import check_number

OUT_OF_RUNNING = -np.inf
MAX_LOCATIONS = 4096
MAX_CHANNELS = 4096


@dataclass(frozen=True)
class LocalRerank:
    """How a model's matcher re-ranks (in its metadata), and the shape of its `local` output."""

    locations: int  # H x W of the stride-16 map
    channels: int
    top_k: int = 5
    weight: float = 2.0

    def __post_init__(self) -> None:
        check_number("local_rerank top_k", self.top_k, 2, 100, integer=True)
        check_number("local_rerank weight", self.weight, 0.0, 100.0)
        check_number("local_rerank locations", self.locations, 1, MAX_LOCATIONS, integer=True)
        check_number("local_rerank channels", self.channels, 1, MAX_CHANNELS, integer=True)

    @property
    def shape(self) -> tuple[int, int]:
        return self.locations, self.channels

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: Any) -> LocalRerank:
        if not isinstance(data, dict) or set(data) != {"top_k", "weight", "locations", "channels"}:
            raise ConfigError("local_rerank must be an object with exactly top_k, weight, locations, channels")
        return cls(**data)


def local_similarity(query: np.ndarray, candidates: np.ndarray) -> np.ndarray:
    """Gallery-to-photo chamfer similarity: query (P, C), candidates (K, P, C) -> (K,)."""
    cosines = np.einsum("pc,kqc->kqp", query.astype(np.float32), candidates.astype(np.float32))
    return cosines.max(axis=2).mean(axis=1)


def top_label_rows(scores: np.ndarray, row_label: np.ndarray, k: int) -> np.ndarray:
    """The best row of each of the k best labels (labels ranked by their best row), best first."""
    order = np.argsort(-scores, kind="stable")
    _, first = np.unique(row_label[order], return_index=True)
    return order[np.sort(first)[:k]]


def rerank(similarity: np.ndarray, row_label: np.ndarray, query_locals: np.ndarray, gallery_locals: np.ndarray,
           config: LocalRerank) -> np.ndarray:
    """(Q, R) cosines -> re-ranked scores: the top_k labels' best rows re-scored, every other row at -inf.

    `row_label`: an integer label id per gallery row; `query_locals` (Q, P, C); `gallery_locals` (R, P, C)."""
    out = np.full(similarity.shape, OUT_OF_RUNNING, dtype=np.float32)
    for q, scores in enumerate(similarity):
        rows = top_label_rows(scores, row_label, config.top_k)
        local = local_similarity(query_locals[q], gallery_locals[rows])
        out[q, rows] = scores[rows] - config.weight * (local.max() - local)
    return out


def label_ids(labels: list[str]) -> np.ndarray:
    """An integer id per row, equal for rows of the same label."""
    return np.unique(np.asarray(labels), return_inverse=True)[1]
