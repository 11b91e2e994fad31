"""Appended segments: rows added to a version-4 or -5 gallery file without rewriting it.

A segment follows the base (or the previous segment): magic `PVGSEGMT`, uint32 header_len, uint64 payload_len,
the first 4 bytes of the sha256 of those 20 (so a damaged length is not taken for an unfinished append), a JSON
header ({"count", "labels", "sources"} and, as the base has them, "texts" and "coded_locations"; optionally
"model_digest")
padded so that the payload starts at a file offset that is a multiple of 16, the rows (embeddings, then local
maps) as in the base, and the sha256 of the segment's bytes before it. The checksum is the commit: it is
written and synced only once the rest of the segment is on disk. A file that ends inside a segment holds an
append that did not finish: readers leave it out (with a warning) and the next writer, under the lock, cuts it
off before it appends. A complete segment whose checksum does not match is damage, and refused.
"""

from __future__ import annotations

import hashlib
import os
import struct
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pocketvec.bounded_json import loads_bounded
from pocketvec.checks import check_number
from pocketvec.errors import GalleryError, PocketvecError
from pocketvec.runtime.gallery.checked import CHECKSUM_SIZE, DAMAGED, Layout, Source, checked_part
from pocketvec.runtime.gallery.header import header_bytes

SEGMENT_MAGIC = b"PVGSEGMT"
SEGMENT = struct.Struct("<8sIQ4s")  # magic, header_len, payload_len, sha256(the 20 bytes before)[:4]
SEGMENT_KEYS = frozenset({"count", "labels", "sources"})
MAX_SEGMENT_HEADER = 256 << 20


@dataclass(frozen=True)
class Segment:
    header: dict[str, Any]
    payload_start: int
    layout: Layout
    end: int  # the offset after its checksum


def read_segment(src: Source, offset: int, base: dict[str, Any], base_layout: Layout, first_row: int,
                 source: str) -> Segment | None:
    """The segment at `offset`, verified; None when the file ends inside it (an append that did not finish)."""
    head = src.read(offset, SEGMENT.size)
    if head[: len(SEGMENT_MAGIC)] != SEGMENT_MAGIC[: len(head)]:
        raise GalleryError(f"{source}: the bytes at offset {offset}, after the gallery's rows, are not an appended "
                           f"segment ({DAMAGED})")
    if len(head) < SEGMENT.size:
        return None
    _, header_len, payload_len, check = SEGMENT.unpack(head)
    if check != _preamble_check(head[:-4]):
        raise GalleryError(f"{source}: the appended segment at byte {offset} has a damaged preamble ({DAMAGED})")
    if header_len > MAX_SEGMENT_HEADER:
        raise GalleryError(f"{source}: the segment at byte {offset} has a {header_len:,}-byte header ({DAMAGED})")
    header_start = offset + SEGMENT.size
    payload_start = header_start + header_len
    end = payload_start + payload_len + CHECKSUM_SIZE
    if end > src.size:
        return None
    what = f"appended segment at byte {offset}"

    def parse(text: bytes) -> tuple[dict[str, Any], None, Layout]:
        header = loads_bounded(text, source, f"{what}: header", GalleryError, MAX_SEGMENT_HEADER)
        check_segment_header(header, base, f"{source}: {what}")
        return header, None, Layout(header["count"], base_layout.dim, base_layout.dtype, base_layout.local_shape,
                                    base_layout.subvectors, header.get("coded_locations", 0))

    header, _, layout = checked_part(src, offset, header_start, payload_start, payload_len, parse, first_row,
                                     source, what)
    return Segment(header, payload_start, layout, end)


def _preamble_check(fields: bytes) -> bytes:
    return hashlib.sha256(fields).digest()[:4]


def _preamble(header_len: int, payload_len: int) -> bytes:
    fields = SEGMENT.pack(SEGMENT_MAGIC, header_len, payload_len, b"")[:-4]
    return fields + _preamble_check(fields)


def check_segment_header(header: Any, base: dict[str, Any], source: str) -> None:
    """A segment header's keys and list lengths (their values are checked with the whole gallery's header)."""
    if not isinstance(header, dict):
        raise GalleryError(f"{source}: header must be a JSON object. Got {type(header).__name__}.")
    keys = SEGMENT_KEYS | ({"texts"} if "texts" in base else set()) | \
        ({"coded_locations"} if "local_codes" in base else set())
    missing, unknown = sorted(keys - set(header)), sorted(set(header) - keys - {"model_digest"})
    if missing or unknown:
        raise GalleryError(f"{source}: header lacks keys {missing} or has unknown keys {unknown}")
    try:
        check_number("count", header["count"], 1, 2**31, integer=True)
        if "coded_locations" in keys:
            check_number("coded_locations", header["coded_locations"], 0, 2**40, integer=True)
    except PocketvecError as e:
        raise GalleryError(f"{source}: header: {e}") from e
    for key in sorted(keys - {"count", "coded_locations"}):
        if not isinstance(header[key], list) or len(header[key]) != header["count"]:
            raise GalleryError(f"{source}: header: '{key}' must be a list of {header['count']} strings")


def merged_header(base: dict[str, Any], segments: list[Segment]) -> dict[str, Any]:
    """The gallery's header with every segment's rows in it (what a rewrite of the file would hold)."""
    merged = dict(base)
    for segment in segments:
        merged["count"] += segment.header["count"]
        if "coded_locations" in segment.header:
            merged["coded_locations"] += segment.header["coded_locations"]
        for key in ("labels", "sources", "texts"):
            if key in segment.header:
                merged[key] = merged[key] + segment.header[key]
        if "model_digest" in segment.header:
            merged["model_digest"] = segment.header["model_digest"]
    return merged


def append_segment(path: Path, committed_end: int, header: dict[str, Any], vectors: np.ndarray,
                   maps: Iterable[np.ndarray]) -> int:
    """Append one segment at `committed_end` (call it under the gallery's lock; bytes after it, an append that
    did not finish, are cut off first). Its checksum goes last, after the rest is synced. -> bytes written."""
    text = header_bytes(header, committed_end + SEGMENT.size)
    chunks = [np.ascontiguousarray(vectors).tobytes(), *(np.ascontiguousarray(m).tobytes() for m in maps)]
    payload_len = sum(len(c) for c in chunks)
    digest, written = hashlib.sha256(), 0
    with open(path, "r+b") as f:
        if os.fstat(f.fileno()).st_size != committed_end:
            f.truncate(committed_end)
        f.seek(committed_end)
        try:
            for chunk in (_preamble(len(text), payload_len), text, *chunks):
                f.write(chunk)
                digest.update(chunk)
                written += len(chunk)
            f.flush()
            os.fsync(f.fileno())
            f.write(digest.digest())
            f.flush()
            os.fsync(f.fileno())
        except BaseException:
            f.truncate(committed_end)
            raise
    return written + CHECKSUM_SIZE
