"""Compact local maps: each gallery row's content box and the codes of its checkerboard locations.

A row keeps its item's content box (`runtime/content_box.py`: 4 bytes) and, for each kept location of it in
row-major order, the `subvectors` code bytes of the model's local codebook (`runtime/local_codebook.py`). In a
file part the boxes of all its rows come first (count x 4 uint8), then every row's codes in row order
(coded locations x subvectors uint8); a row's codes start where the previous rows' kept locations end.
`CodedMaps` holds them as parts (memory-mapped regions of the file, rows added in memory), as `Rows` holds
full maps; the re-rank decodes only the candidates it scores (`Decoder`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from pocketvec.errors import GalleryError
from pocketvec.runtime.content_box import BOX_BYTES, checker_count, checker_locations, map_side
from pocketvec.runtime.local_codebook import LocalCodebook
from pocketvec.runtime.weights_digest import short


@dataclass(frozen=True)
class CodedPart:
    boxes: np.ndarray  # (n, 4) uint8
    codes: np.ndarray  # (coded locations, subvectors) uint8
    starts: np.ndarray  # (n + 1,) each row's first code row

    @classmethod
    def of(cls, boxes: np.ndarray, codes: np.ndarray) -> CodedPart:
        starts = np.concatenate([[0], np.cumsum(checker_count(boxes))]).astype(np.int64)
        if starts[-1] != len(codes):
            raise GalleryError(f"{len(boxes)} boxes keep {starts[-1]} locations, got codes for {len(codes)}")
        return cls(boxes, codes, starts)


class CodedMaps:
    """Read-only compact local maps of a gallery's rows, coded with the codebook whose digest is `digest`."""

    def __init__(self, parts: Sequence[CodedPart], subvectors: int, digest: str) -> None:
        self.parts = [p for p in parts if len(p.boxes)]
        self.subvectors, self.digest = subvectors, digest
        self.row_starts = np.cumsum([0] + [len(p.boxes) for p in self.parts])

    @classmethod
    def empty(cls, subvectors: int, digest: str) -> CodedMaps:
        return cls([], subvectors, digest)

    def __len__(self) -> int:
        return int(self.row_starts[-1])

    @property
    def coded(self) -> int:
        """Locations coded in all."""
        return sum(len(p.codes) for p in self.parts)

    @property
    def nbytes(self) -> int:
        return len(self) * BOX_BYTES + self.coded * self.subvectors

    def _locate(self, i: int) -> tuple[CodedPart, int]:
        if not 0 <= i < len(self):
            raise IndexError(f"row {i} of {len(self)}")
        part = int(np.searchsorted(self.row_starts, i, side="right")) - 1
        return self.parts[part], i - int(self.row_starts[part])

    def row(self, i: int) -> tuple[np.ndarray, np.ndarray]:
        """(box, codes) of row i."""
        part, j = self._locate(int(i))
        return part.boxes[j], part.codes[part.starts[j] : part.starts[j + 1]]

    def select(self, ids: Sequence[int]) -> CodedMaps:
        """The rows `ids` (copied: a few KB a row)."""
        rows = [self.row(i) for i in ids]
        boxes = np.array([b for b, _ in rows], np.uint8).reshape(-1, BOX_BYTES)
        codes = np.concatenate([c for _, c in rows]) if rows else np.zeros((0, self.subvectors), np.uint8)
        return CodedMaps([CodedPart.of(boxes, codes)], self.subvectors, self.digest)

    def extend(self, boxes: np.ndarray, codes: np.ndarray) -> CodedMaps:
        part = CodedPart.of(np.asarray(boxes, np.uint8).reshape(-1, BOX_BYTES), np.asarray(codes, np.uint8))
        return CodedMaps([*self.parts, part], self.subvectors, self.digest)

    def chunks(self) -> Iterator[np.ndarray]:
        """The bytes a file part holds: every row's box, then every row's codes."""
        yield from (p.boxes for p in self.parts)
        yield from (p.codes for p in self.parts)

    def decoder(self, codebook: LocalCodebook | None, source: str = "gallery") -> Decoder:
        """The rows, decoded with `codebook`: refused unless it is the one that coded them."""
        if codebook is None or codebook.digest != self.digest:
            has = "carries no local codebook" if codebook is None else f"has codebook {short(codebook.digest)}"
            raise GalleryError(f"{source} codes its local maps with codebook {short(self.digest)}; this model "
                               f"{has}; rebuild the gallery with this model (`pocketvec gallery build`)")
        return Decoder(self, codebook)


class Decoder:
    """`[ids]` -> each row's stored locations, decoded: a list of (kept locations, channels) float32."""

    def __init__(self, maps: CodedMaps, codebook: LocalCodebook) -> None:
        self.maps, self.codebook = maps, codebook

    def __len__(self) -> int:
        return len(self.maps)

    def __getitem__(self, ids) -> list[np.ndarray]:
        codes = [self.maps.row(i)[1] for i in np.atleast_1d(np.asarray(ids, np.int64))]
        decoded = self.codebook.decode(np.concatenate(codes)) if codes else np.zeros((0, self.codebook.channels))
        return np.split(decoded, np.cumsum([len(c) for c in codes])[:-1])  # all rows at once: one product


def encode_maps(maps: np.ndarray, boxes: np.ndarray, codebook: LocalCodebook) -> tuple[np.ndarray, np.ndarray]:
    """Full maps (N, side * side, C) and their boxes (N, 4) -> (boxes uint8, codes of the kept locations)."""
    maps = np.asarray(maps, np.float32)
    side = map_side(maps.shape[1])
    kept = [map_[checker_locations(box, side)] for map_, box in zip(maps, boxes, strict=True)]
    flat = np.concatenate(kept) if kept else np.zeros((0, maps.shape[2]), np.float32)
    return np.asarray(boxes, np.uint8).reshape(-1, BOX_BYTES), codebook.encode(flat)
