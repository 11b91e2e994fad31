"""Rows kept as parts: one array's rows spread over several arrays (memory-mapped regions of a gallery file,
rows added in memory), indexed as one array without ever joining them.

A gallery's local maps are most of its bytes (44 KB a row); they stay where they are: the re-rank gathers the
few rows it scores (`rows[ids]`), a removal keeps views of the runs of rows it keeps, a write streams `chunks`.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence

import numpy as np

CHUNK_BYTES = 8 << 20  # rows streamed at a time: at most this many bytes (and at least one row)


class Rows:
    """Read-only rows of one shape and dtype, made of `parts` (each (n_i, *row_shape))."""

    def __init__(self, parts: Sequence[np.ndarray], row_shape: tuple[int, ...], dtype: np.dtype) -> None:
        self.dtype, self.row_shape = np.dtype(dtype), tuple(row_shape)
        self.parts = [p for p in parts if len(p)]
        for part in self.parts:
            if part.shape[1:] != self.row_shape or part.dtype != self.dtype:
                raise ValueError(f"a part of shape {part.shape} {part.dtype} in rows of {self.row_shape} {self.dtype}")
        self.starts = np.cumsum([0] + [len(p) for p in self.parts])

    @classmethod
    def of(cls, array: np.ndarray) -> Rows:
        return cls([array], array.shape[1:], array.dtype)

    def __len__(self) -> int:
        return int(self.starts[-1])

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self), *self.row_shape)

    @property
    def ndim(self) -> int:
        return 1 + len(self.row_shape)

    @property
    def nbytes(self) -> int:
        return len(self) * self.dtype.itemsize * int(np.prod(self.row_shape))

    def __getitem__(self, ids) -> np.ndarray:
        """Row i, or the rows `ids` (integers or a boolean mask) gathered into one new array."""
        if isinstance(ids, (int, np.integer)):
            i = int(ids) + (len(self) if ids < 0 else 0)
            if not 0 <= i < len(self):
                raise IndexError(f"row {ids} of {len(self)}")
            part = int(np.searchsorted(self.starts, i, side="right")) - 1
            return self.parts[part][i - self.starts[part]]
        ids = np.arange(len(self))[ids] if isinstance(ids, slice) else np.asarray(ids)
        if ids.dtype == bool:
            ids = np.flatnonzero(ids)
        ids = np.where(ids < 0, ids + len(self), ids).astype(np.int64)
        if len(ids) and not (ids.min() >= 0 and ids.max() < len(self)):
            raise IndexError(f"rows {ids.min()}..{ids.max()} of {len(self)}")
        out = np.empty((len(ids), *self.row_shape), self.dtype)
        part_of = np.searchsorted(self.starts, ids, side="right") - 1
        for part in np.unique(part_of):
            here = part_of == part
            out[here] = self.parts[part][ids[here] - self.starts[part]]
        return out

    def select(self, ids: Sequence[int]) -> Rows:
        """The rows `ids` (ascending), as views of the runs of consecutive rows: nothing is copied."""
        ids = np.asarray(ids, dtype=np.int64)
        breaks = np.flatnonzero(np.diff(ids) != 1) + 1
        parts = []
        for run in np.split(ids, breaks) if len(ids) else []:
            start, stop = int(run[0]), int(run[-1]) + 1
            while start < stop:
                part = int(np.searchsorted(self.starts, start, side="right")) - 1
                end = min(stop, int(self.starts[part + 1]))
                parts.append(self.parts[part][start - self.starts[part] : end - self.starts[part]])
                start = end
        return Rows(parts, self.row_shape, self.dtype)

    def extend(self, rows: np.ndarray) -> Rows:
        """These rows and then `rows` (kept as one more part)."""
        return Rows([*self.parts, np.asarray(rows, self.dtype)], self.row_shape, self.dtype)

    def chunks(self, max_bytes: int = CHUNK_BYTES) -> Iterator[np.ndarray]:
        """The rows in order, a few at a time (views, no copies)."""
        row_bytes = max(1, self.nbytes // max(1, len(self)))
        step = max(1, max_bytes // row_bytes)
        for part in self.parts:
            for start in range(0, len(part), step):
                yield part[start : start + step]

    def __array__(self, dtype=None, copy=None) -> np.ndarray:
        joined = (np.concatenate(self.parts) if self.parts
                  else np.zeros((0, *self.row_shape), self.dtype))
        return joined if dtype is None else joined.astype(dtype)

    def copy(self) -> np.ndarray:
        """Every row joined into one new array (the whole size in memory: for small galleries and tests)."""
        return np.array(self.__array__())

    def astype(self, dtype) -> np.ndarray:
        return self.__array__(dtype)
