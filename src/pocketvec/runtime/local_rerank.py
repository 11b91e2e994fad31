"""The local re-rank: the best few labels by cosine, re-scored by how well each one's local marks are found.

A model exported with a local re-rank has a second output, `local`: the backbone's stride-16 feature map
as (locations, channels), each location L2-normalised. A gallery row keeps its item's map: every location, or
(a compact gallery, runtime/gallery/coded.py) its content box's checkerboard, coded, decoded for scoring; a row
is scored over the locations it keeps. For one photo,
the `top_k` best labels by cosine (each label's best row) are re-scored

    score = cosine - weight x (best local - local)
    local = (1 - photo_weight) x found + photo_weight x explained
    found = the mean over the row's locations of each one's best cosine with any photo location
            (gallery-to-photo chamfer: a mark the item has and the photo lacks finds no match), averaged
            with the mean of its worst `worst_fraction` of locations (so one missing mark counts)
    explained = the mean over the photo's item locations of each one's best cosine with any row location
            (photo-to-gallery: a mark the photo shows and the item lacks finds no match); a photo location
            is on the item when some candidate matches it above `photo_threshold`, so background is left out

Every other row drops to -inf, out of the running (as a second label in a one-label gallery). The accept
rule then applies to these scores as it does to plain cosines. A file written before `worst_fraction`,
`photo_weight` and `photo_threshold` existed re-ranks as it did (`found` alone, the plain mean).
docs/RUNTIME.md has the measurements and the reason for each setting.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, replace
from typing import Any

import numpy as np

from pocketvec.checks import check_number
from pocketvec.errors import ConfigError
from pocketvec.runtime.local_codebook import LocalCodebook

OUT_OF_RUNNING = -np.inf
MAX_LOCATIONS = 4096
MAX_CHANNELS = 4096
REQUIRED_KEYS = {"top_k", "weight", "locations", "channels"}
# What a file without the photo-side keys means: the gallery-to-photo mean alone (older exports).
GALLERY_SIDE_ONLY = {"worst_fraction": 0.0, "photo_weight": 0.0, "photo_threshold": 0.5}


@dataclass(frozen=True)
class LocalRerank:
    """How a model's matcher re-ranks (in its metadata), and the shape of its `local` output.
    The defaults are what `pocketvec export` writes."""

    locations: int  # H x W of the stride-16 map
    channels: int
    top_k: int = 5
    weight: float = 4.0
    worst_fraction: float = 0.1  # 0: `found` is the plain mean
    photo_weight: float = 0.5  # 0: gallery-to-photo only
    photo_threshold: float = 0.5
    codebook: LocalCodebook | None = None  # how a compact gallery codes its maps (runtime/local_codebook.py)

    def __post_init__(self) -> None:
        check_number("local_rerank top_k", self.top_k, 2, 100, integer=True)
        check_number("local_rerank weight", self.weight, 0.0, 100.0)
        check_number("local_rerank locations", self.locations, 1, MAX_LOCATIONS, integer=True)
        check_number("local_rerank channels", self.channels, 1, MAX_CHANNELS, integer=True)
        check_number("local_rerank worst_fraction", self.worst_fraction, 0.0, 1.0)
        check_number("local_rerank photo_weight", self.photo_weight, 0.0, 1.0)
        check_number("local_rerank photo_threshold", self.photo_threshold, -1.0, 1.0)
        if self.codebook is not None and (not isinstance(self.codebook, LocalCodebook)
                                          or self.codebook.channels != self.channels):
            raise ConfigError(f"local_rerank codebook must code {self.channels}-channel locations")

    @property
    def shape(self) -> tuple[int, int]:
        return self.locations, self.channels

    def to_dict(self) -> dict[str, Any]:
        """As the metadata holds it; `codebook` only when the model has one, so older files read the same."""
        data = asdict(replace(self, codebook=None))
        del data["codebook"]
        return data if self.codebook is None else {**data, "codebook": self.codebook.to_dict()}

    @classmethod
    def from_dict(cls, data: Any) -> LocalRerank:
        keys = set(data) if isinstance(data, dict) else set()
        known = REQUIRED_KEYS | set(GALLERY_SIDE_ONLY) | {"codebook"}
        if not isinstance(data, dict) or not keys >= REQUIRED_KEYS or not keys <= known:
            raise ConfigError(f"local_rerank must be an object with {', '.join(sorted(REQUIRED_KEYS))} and optionally "
                              f"{', '.join(GALLERY_SIDE_ONLY)}, codebook; got {sorted(keys) if keys else data!r}")
        data = {**GALLERY_SIDE_ONLY, **data}
        if "codebook" in data:
            channels = data["channels"] if isinstance(data["channels"], int) else 0
            data["codebook"] = LocalCodebook.from_dict(data["codebook"], channels)
        return cls(**data)


def local_similarity(query: np.ndarray, candidates: np.ndarray | Sequence[np.ndarray],
                     config: LocalRerank) -> np.ndarray:
    """The local score of each candidate: query (P, C), candidates (K, P, C) or K rows of their own number of
    locations (n_k, C) (a compact gallery's: each scored over the locations it stores) -> (K,)."""
    rows = [np.asarray(row) for row in candidates]
    counts = [len(row) for row in rows]
    # one matrix product (all rows' locations, C) @ (C, P): BLAS, several times an einsum's speed; in float64, as
    # the sample app sums (a float32 product's blocked sums moved re-ranked scores by 1e-6 from the app's)
    flat = np.concatenate([np.asarray(row, dtype=np.float64) for row in rows]).reshape(sum(counts), -1)
    cosines = np.split(flat @ np.ascontiguousarray(query, dtype=np.float64).T, np.cumsum(counts)[:-1])
    found, best_in_row = np.empty(len(rows)), np.empty((len(rows), len(query)))
    for k, row_cosines in enumerate(cosines):
        best_in_photo = row_cosines.max(axis=1)  # (row locations,)
        found[k] = best_in_photo.mean()
        if config.worst_fraction > 0:
            worst = max(1, int(config.worst_fraction * len(best_in_photo)))
            found[k] = 0.5 * (found[k] + np.sort(best_in_photo)[:worst].mean())
        best_in_row[k] = row_cosines.max(axis=0)  # (photo locations,)
    if config.photo_weight == 0:
        return found
    on_item = best_in_row.max(axis=0) > config.photo_threshold
    explained = best_in_row[:, on_item].mean(axis=1) if on_item.any() else np.zeros_like(found)
    return (1 - config.photo_weight) * found + config.photo_weight * explained


def top_label_rows(scores: np.ndarray, row_label: np.ndarray, k: int) -> np.ndarray:
    """The best row of each of the k best labels (labels ranked by their best row), best first."""
    order = np.argsort(-scores, kind="stable")
    _, first = np.unique(row_label[order], return_index=True)
    return order[np.sort(first)[:k]]


def rerank(similarity: np.ndarray, row_label: np.ndarray, query_locals: np.ndarray, gallery_locals: np.ndarray,
           config: LocalRerank, rows: np.ndarray | None = None) -> np.ndarray:
    """(Q, R) cosines -> re-ranked scores: the top_k labels' best rows re-scored, every other row at -inf.

    `row_label`: an integer label id per column; `query_locals` (Q, P, C); `gallery_locals` (gallery rows, P, C),
    any array-like whose `[ids]` gathers those rows (a gallery's mapped Rows: only the candidates are read), or
    whose `[ids]` gives each row's own locations (a compact gallery's CodedMaps, decoded);
    `rows`: the gallery row of each column, ascending (None: column i is row i)."""
    out = np.full(similarity.shape, OUT_OF_RUNNING, dtype=np.float32)
    for q, scores in enumerate(similarity):
        picked = top_label_rows(scores, row_label, config.top_k)
        local = local_similarity(query_locals[q], gallery_locals[picked if rows is None else rows[picked]], config)
        out[q, picked] = scores[picked] - config.weight * (local.max() - local)
    return out


def label_ids(labels: list[str]) -> np.ndarray:
    """An integer id per row, equal for rows of the same label."""
    return np.unique(np.asarray(labels), return_inverse=True)[1]
