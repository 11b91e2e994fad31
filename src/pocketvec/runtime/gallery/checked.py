"""Reading a gallery file's checksummed parts in one streaming pass, then mapping its rows.

A part (the base, an appended segment) is a preamble, a JSON header, a payload of rows and the sha256 of
everything before it. `checked_part` reads it in chunks of a few MB with plain reads (not through the map, so
the pages do not stay in this process's memory), hashing each chunk and checking its rows (finite, unit
vectors) on the way; the file's rows are then memory-mapped (`Source.array`), never copied.
A problem in the rows is raised only once the checksum matched: a damaged file reads as damaged.
"""

from __future__ import annotations

import hashlib
import mmap
import os
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from pocketvec.errors import GalleryError
from pocketvec.runtime.content_box import BOX_BYTES, box_problem, checker_count, map_side
from pocketvec.runtime.unit_norm import first_not_unit

CHECKSUM_SIZE = 32
CHUNK_BYTES = 4 << 20  # bytes read and checked at a time (and at least one row)
LOCAL_DTYPE = np.dtype("<f2")
DAMAGED = "the gallery was edited or damaged; rebuild it"


@dataclass(frozen=True)
class Layout:
    """The rows of one part: count x dim embeddings of `dtype`, then count local maps (float16) if any; or,
    compact (`subvectors` > 0), count content boxes and the codes of `coded` locations (gallery/coded.py)."""

    count: int
    dim: int
    dtype: np.dtype
    local_shape: tuple[int, int] | None
    subvectors: int = 0  # code bytes per location of compact maps; 0: full maps (or none)
    coded: int = 0  # locations coded in this part

    @property
    def vector_bytes(self) -> int:
        return self.count * self.dim * self.dtype.itemsize

    @property
    def map_bytes(self) -> int:
        """Bytes of one row's full local map (0 for compact maps)."""
        if not self.local_shape or self.subvectors:
            return 0
        return self.local_shape[0] * self.local_shape[1] * LOCAL_DTYPE.itemsize

    @property
    def box_bytes(self) -> int:
        return self.count * BOX_BYTES if self.subvectors else 0

    @property
    def payload_bytes(self) -> int:
        return self.vector_bytes + self.count * self.map_bytes + self.box_bytes + self.coded * self.subvectors

    def describe(self) -> str:
        maps = f" + {self.count} x {self.local_shape[0]} x {self.local_shape[1]} float16" if self.map_bytes else ""
        if self.subvectors:
            maps = f" + {self.count} content boxes + {self.coded} x {self.subvectors} code bytes"
        return f"{self.count} x {self.dim} {self.dtype.name}{maps}"


class Source:
    """A gallery's bytes: in memory (`raw`) or an open file (`fd`), read by offset."""

    def __init__(self, raw: bytes | None = None, fd: int | None = None) -> None:
        self.raw, self.fd = raw, fd
        self.size = len(raw) if raw is not None else os.fstat(fd).st_size
        self.buffer: Any = raw

    def read(self, offset: int, n: int) -> bytes:
        n = max(0, min(n, self.size - offset))
        if self.raw is not None:
            return self.raw[offset : offset + n]
        first = os.pread(self.fd, n, offset)
        if len(first) == n:  # the usual case: one read, no copy
            return first
        out = bytearray(first)
        while len(out) < n:
            got = os.pread(self.fd, n - len(out), offset + len(out))
            if not got:
                break
            out += got
        return bytes(out)

    def map(self, end: int) -> None:
        """Map the file's first `end` bytes (the committed ones) for `array`."""
        if self.raw is None:
            self.buffer = mmap.mmap(self.fd, end, access=mmap.ACCESS_READ)

    def array(self, offset: int, dtype: np.dtype, shape: tuple[int, ...]) -> np.ndarray:
        """A read-only view of the rows at `offset` (mapped, for a file: nothing is copied)."""
        return np.frombuffer(self.buffer, dtype, int(np.prod(shape)), offset).reshape(shape)


Parse = Callable[[bytes], tuple[dict[str, Any], Any, Layout]]


def checked_part(src: Source, start: int, header_start: int, payload_start: int, payload_len: int, parse: Parse,
                 first_row: int, source: str, what: str = "gallery") -> tuple[dict[str, Any], Any, Layout]:
    """Verify one part (its bytes [start, payload_start + payload_len) and the checksum after them) in one pass;
    `parse` turns its header bytes into (header, extra, layout). Rows are numbered from `first_row`."""
    head = src.read(start, payload_start - start)
    digest = hashlib.sha256(head)
    error: GalleryError | None = None
    layout = None
    try:
        parsed = parse(head[header_start - start :])
        layout = parsed[2]
        if layout.payload_bytes != payload_len:
            size = "truncated" if payload_len < layout.payload_bytes else "oversized"
            raise GalleryError(f"{source}: {size} {what} payload ({payload_len} bytes, expected "
                               f"{layout.payload_bytes} for {layout.describe()})")
    except GalleryError as e:
        error, layout = e, None
    problem = _stream(src, digest, payload_start, payload_len, layout, first_row, source)
    if digest.digest() != src.read(payload_start + payload_len, CHECKSUM_SIZE):
        raise GalleryError(f"{source}: {what} checksum mismatch (the file was modified, truncated or damaged)")
    if error is not None:
        raise error
    if problem is not None:
        raise GalleryError(problem)
    return parsed


def hash_matches(src: Source, end: int) -> bool:
    """Whether the checksum at `end` is the sha256 of the bytes before it (streamed)."""
    digest = hashlib.sha256()
    for offset in range(0, end, CHUNK_BYTES):
        digest.update(src.read(offset, min(CHUNK_BYTES, end - offset)))
    return digest.digest() == src.read(end, CHECKSUM_SIZE)


def checked_rows(src: Source, layout: Layout, source: str) -> str | None:
    """The first problem of the rows that fill `src` (no checksum to verify), or None."""
    return _stream(src, hashlib.sha256(), 0, layout.payload_bytes, layout, 0, source)


def _stream(src: Source, digest, offset: int, length: int, layout: Layout | None, first_row: int,
            source: str) -> str | None:
    """Hash the payload chunk by chunk, checking its rows when `layout` fits; -> the first row problem."""
    if layout is None:
        for start in range(offset, offset + length, CHUNK_BYTES):
            digest.update(src.read(start, min(CHUNK_BYTES, offset + length - start)))
        return None
    problem = None
    kinds = [(layout.dim * layout.dtype.itemsize, layout.dtype, (layout.dim,), "row")]
    if layout.map_bytes:
        kinds.append((layout.map_bytes, LOCAL_DTYPE, layout.local_shape, "map"))
    if layout.subvectors:
        kinds.append((BOX_BYTES, np.dtype(np.uint8), (BOX_BYTES,), "box"))
    kept = 0
    for row_bytes, dtype, row_shape, kind in kinds:
        step = max(1, CHUNK_BYTES // row_bytes)
        for row in range(0, layout.count, step):
            n = min(step, layout.count - row)
            data = src.read(offset, n * row_bytes)
            digest.update(data)
            offset += n * row_bytes
            if problem is None and len(data) == n * row_bytes:
                rows = np.frombuffer(data, dtype).reshape(n, *row_shape)
                if kind == "box":
                    problem = _box_problem(rows, layout, first_row + row, source)
                    kept += int(checker_count(rows).sum())
                else:
                    problem = _row_problem(rows, kind == "map", first_row + row, source)
    if layout.subvectors:
        end = offset + layout.coded * layout.subvectors
        for start in range(offset, end, CHUNK_BYTES):  # codes: any byte is a centroid
            digest.update(src.read(start, min(CHUNK_BYTES, end - start)))
        if problem is None and kept != layout.coded:
            problem = f"{source}: its content boxes keep {kept} locations, the header counts {layout.coded} ({DAMAGED})"
    return problem


def _box_problem(boxes: np.ndarray, layout: Layout, first_row: int, source: str) -> str | None:
    bad = box_problem(boxes, map_side(layout.local_shape[0]))
    if bad is None:
        return None
    return f"{source}: row {first_row + bad}: content box {boxes[bad].tolist()} leaves the map ({DAMAGED})"


def _row_problem(rows: np.ndarray, is_map: bool, first_row: int, source: str) -> str | None:
    """What is wrong with the first bad row (or local map location) of a chunk, or None. A non-finite value
    makes its vector's norm non-finite: the norm check names it."""
    bad = first_not_unit(rows, allow_zero=is_map)
    if bad is None:
        return None
    if not is_map:
        return f"{source}: row {first_row + bad[0]}: {bad[1]} ({DAMAGED})"
    row, location = divmod(bad[0], rows.shape[1])
    return f"{source}: row {first_row + row}, local map location {location}: {bad[1]} ({DAMAGED})"
