"""The `.pvg` gallery file: bytes and files <-> (header, rows), exactly as docs/FORMATS.md describes.

Version 5 (written), little-endian: a base (magic `PVGALLRY`, uint32 version, uint32 header_len, uint64
payload_len, a UTF-8 JSON header padded with spaces so that the payload starts at a multiple of 16, the
embeddings, then the rows' local maps: full, as float16, when the header has `local_shape` alone; compact, as
content boxes and codes (`coded`), when it also has `local_codes`; and a 32-byte sha256 of every byte of the
base before it), then any appended segments (`segments`), each with its own header and checksum. Version 4 (the
same without compact maps), versions 2 and 3 (a 16-byte preamble, one part that runs to the end of the file; 3
with local maps) and version 1 (no trailer, a `payload_sha256` in the header, with a warning) still read. A bad
file raises GalleryError naming it.

`read` verifies a file in one streaming pass and maps its rows (`checked`): the embeddings and local maps are
views of the file, not copies; the local maps of several parts are one `Rows` (or `CodedMaps`).
"""

from __future__ import annotations

import hashlib
import struct
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pocketvec.atomic import write_bytes_atomic
from pocketvec.bounded_json import loads_bounded
from pocketvec.errors import GalleryError, PocketvecWarning
from pocketvec.runtime.content_box import BOX_BYTES
from pocketvec.runtime.gallery.checked import (
    CHECKSUM_SIZE,
    DAMAGED,
    LOCAL_DTYPE,
    Layout,
    Source,
    checked_part,
    checked_rows,
    hash_matches,
)
from pocketvec.runtime.gallery.coded import CodedMaps, CodedPart
from pocketvec.runtime.gallery.header import DTYPE_NAMES, check_header, header_bytes
from pocketvec.runtime.gallery.rows import Rows
from pocketvec.runtime.gallery.segments import merged_header, read_segment
from pocketvec.runtime.metadata import AcceptRule
from pocketvec.runtime.unit_norm import first_not_unit

MAGIC = b"PVGALLRY"
VERSION = 5
READABLE_VERSIONS = (1, 2, 3, 4, 5)
PREAMBLE = struct.Struct("<8sII")  # magic, version, header_len (versions 1-3)
BASE = struct.Struct("<8sIIQ")  # magic, version, header_len, payload_len (versions 4 and 5)
MAX_HEADER_BYTES = 256 << 20
DTYPES = {name: np.dtype({"float32": "<f4", "float16": "<f2", "int8": "i1"}[name]) for name in DTYPE_NAMES}
__all__ = ["CHECKSUM_SIZE", "DAMAGED", "LOCAL_DTYPE", "Decoded", "check_unit", "decode", "encode", "read"]


@dataclass(frozen=True)
class Decoded:
    header: dict[str, Any]  # with every appended segment's rows in it
    vectors: np.ndarray  # (count, dim), read-only: mapped from the file (one part) or joined (several)
    accept_rule: AcceptRule | None
    version: int
    locals: Rows | CodedMaps | None = None  # (count, locations, channels) float16, or compact maps; mapped
    parts: int = 1  # the base and its appended segments
    committed_end: int = 0  # the bytes read: an append that did not finish starts here


def encode_parts(header: dict[str, Any], vectors: np.ndarray, maps: Rows | CodedMaps | np.ndarray | None = None
                 ) -> Iterator[bytes]:
    """The bytes of a current-version file without segments, a few MB at a time (a gallery is never held whole)."""
    maps = Rows.of(np.asarray(maps, LOCAL_DTYPE)) if isinstance(maps, np.ndarray) else maps
    return _encoded(header, vectors, maps.chunks() if maps is not None else (), maps.nbytes if maps is not None else 0)


def write_streamed(path: str | Path, header: dict[str, Any], vectors: np.ndarray,
                   map_chunks: Iterable[np.ndarray] | None = None) -> Path:
    """Write a current-version file whose local maps arrive a chunk at a time (made on the fly, never held whole:
    full maps as rows of float16, compact ones as the boxes then the codes, uint8), atomically; maps of another size
    than the header gives are refused."""
    shape = header.get("local_shape")
    map_bytes = header["count"] * int(np.prod(shape)) * LOCAL_DTYPE.itemsize if map_chunks is not None and shape \
        else 0
    if map_chunks is not None and "local_codes" in header:
        map_bytes = header["count"] * BOX_BYTES + header["coded_locations"] * header["local_codes"]["subvectors"]
    return write_atomic(path, _encoded(header, vectors, map_chunks or (), map_bytes, str(path)))


def _encoded(header: dict[str, Any], vectors: np.ndarray, map_chunks: Iterable[np.ndarray], map_bytes: int,
             source: str = "gallery") -> Iterator[bytes]:
    vectors = np.ascontiguousarray(vectors, dtype=DTYPES[header["dtype"]])
    text = header_bytes(header, BASE.size)
    digest = hashlib.sha256()
    written = 0
    for chunk in (BASE.pack(MAGIC, VERSION, len(text), vectors.nbytes + map_bytes), text, vectors.tobytes()):
        digest.update(chunk)
        yield chunk
    for rows in map_chunks:  # one chunk at a time: never the whole payload (full maps float16, compact uint8)
        chunk = np.ascontiguousarray(rows, dtype=rows.dtype if rows.dtype == np.uint8 else LOCAL_DTYPE).tobytes()
        written += len(chunk)
        digest.update(chunk)
        yield chunk
    if written != map_bytes:
        row = max(1, map_bytes // max(1, header["count"]))
        raise GalleryError(f"{source}: got local maps for {written // row} rows, the header counts {header['count']}")
    yield digest.digest()


def encode(header: dict[str, Any], payload: np.ndarray, locals_: Rows | np.ndarray | None = None) -> bytes:
    """The file's bytes for a header and a (count, dim) payload (with the rows' local maps when the header
    holds `local_shape`)."""
    return b"".join(encode_parts(header, payload, locals_))


def decode(raw: bytes, source: str) -> Decoded:
    """Parse and verify a file's bytes; `source` names the file in every error."""
    return _parse(Source(raw=raw), source)


def read(path: str | Path) -> Decoded:
    """Verify the file at `path` in one streaming pass and map its rows."""
    with open(path, "rb") as f:
        return _parse(Source(fd=f.fileno()), str(path))


def _parse(src: Source, source: str) -> Decoded:
    if src.size < PREAMBLE.size:
        raise GalleryError(f"{source}: not a pocketvec gallery (file is {src.size} bytes, too short)")
    magic, version, header_len = PREAMBLE.unpack(src.read(0, PREAMBLE.size))
    if magic != MAGIC:
        raise GalleryError(f"{source}: not a pocketvec gallery (magic {magic!r}, expected {MAGIC!r})")
    if version not in READABLE_VERSIONS:
        raise GalleryError(f"{source}: gallery format version {version} is not supported "
                           f"(this pocketvec reads {', '.join(map(str, READABLE_VERSIONS))})")
    if version == 1:
        return _decode_v1(src.read(0, src.size), header_len, source)
    if version >= 4:
        if src.size < BASE.size + CHECKSUM_SIZE:
            raise GalleryError(f"{source}: truncated gallery (no room for the {CHECKSUM_SIZE}-byte checksum)")
        header_start, payload_len = BASE.size, BASE.unpack(src.read(0, BASE.size))[3]
    else:  # versions 2 and 3: the payload runs to the checksum at the end of the file
        if src.size < PREAMBLE.size + CHECKSUM_SIZE:
            raise GalleryError(f"{source}: truncated gallery (no room for the {CHECKSUM_SIZE}-byte checksum)")
        header_start = PREAMBLE.size
        payload_len = src.size - CHECKSUM_SIZE - header_start - header_len
    payload_start = header_start + header_len
    if payload_len < 0 or payload_start + payload_len + CHECKSUM_SIZE > src.size:
        body = src.size - CHECKSUM_SIZE if version < 4 else src.size
        if version < 4 and not hash_matches(src, body):
            raise GalleryError(f"{source}: gallery checksum mismatch (the file was modified, truncated or damaged)")
        raise GalleryError(f"{source}: truncated gallery (header and rows need "
                           f"{payload_start + max(payload_len, 0)} bytes, file has {body})")

    def parse(text: bytes) -> tuple[dict[str, Any], AcceptRule | None, Layout]:
        header = loads_bounded(text, source, "gallery header", GalleryError, MAX_HEADER_BYTES)
        rule = check_header(header, source, version)
        shape = tuple(header["local_shape"]) if "local_shape" in header else None
        codes = header.get("local_codes", {})
        return header, rule, Layout(header["count"], header["dim"], DTYPES[header["dtype"]], shape,
                                    codes.get("subvectors", 0), header.get("coded_locations", 0))

    header, rule, layout = checked_part(src, 0, header_start, payload_start, payload_len, parse, 0, source)
    parts, end = [(payload_start, layout)], payload_start + payload_len + CHECKSUM_SIZE
    segments = []
    while version >= 4 and end < src.size:
        segment = read_segment(src, end, header, layout, sum(p[1].count for p in parts), source)
        if segment is None:
            warnings.warn(PocketvecWarning(
                f"{source}: an append that did not finish ({src.size - end} bytes at byte {end}) is left out: a "
                "writer is adding rows now or was stopped mid-write; the next `pocketvec gallery add` or "
                "`pocketvec gallery compact` removes it"), stacklevel=3)
            break
        segments.append(segment)
        parts.append((segment.payload_start, segment.layout))
        end = segment.end
    if segments:
        header = merged_header(header, segments)
        check_header(header, source, version)
    return _mapped(src, header, rule, version, parts, end)


def _mapped(src: Source, header: dict[str, Any], rule: AcceptRule | None, version: int,
            parts: list[tuple[int, Layout]], end: int) -> Decoded:
    """The verified parts' rows as views of the file (the embeddings of several parts joined: 256 B a row)."""
    src.map(end)
    vectors = [src.array(start, layout.dtype, (layout.count, layout.dim)) for start, layout in parts]
    shape = parts[0][1].local_shape
    maps = None
    if "local_codes" in header:
        maps = CodedMaps([_coded_part(src, start, layout) for start, layout in parts],
                         header["local_codes"]["subvectors"], header["local_codes"]["digest"])
    elif shape is not None:
        maps = Rows([src.array(start + layout.vector_bytes, LOCAL_DTYPE, (layout.count, *shape))
                     for start, layout in parts], shape, LOCAL_DTYPE)
    joined = vectors[0] if len(vectors) == 1 else np.concatenate(vectors)
    return Decoded(header, joined, rule, version, maps, len(parts), end)


def _coded_part(src: Source, start: int, layout: Layout) -> CodedPart:
    at = start + layout.vector_bytes
    boxes = src.array(at, np.dtype(np.uint8), (layout.count, BOX_BYTES))
    return CodedPart.of(boxes, src.array(at + layout.box_bytes, np.dtype(np.uint8), (layout.coded, layout.subvectors)))


def _decode_v1(raw: bytes, header_len: int, source: str) -> Decoded:
    """Version 1: no trailer; the header's payload_sha256 covers the payload alone."""
    end = PREAMBLE.size + header_len
    if end > len(raw):
        raise GalleryError(f"{source}: truncated gallery (header needs {end} bytes, file has {len(raw)})")
    header = loads_bounded(raw[PREAMBLE.size : end], source, "gallery header", GalleryError, MAX_HEADER_BYTES)
    rule = check_header(header, source, 1)
    shape = tuple(header["local_shape"]) if header.get("local_shape") else None  # never written; read as before
    layout = Layout(header["count"], header["dim"], DTYPES[header["dtype"]], shape)
    payload = raw[end:]
    if len(payload) != layout.payload_bytes:
        raise GalleryError(f"{source}: {'truncated' if len(payload) < layout.payload_bytes else 'oversized'} gallery "
                           f"payload ({len(payload)} bytes, expected {layout.payload_bytes} for {layout.describe()})")
    if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
        raise GalleryError(f"{source}: gallery payload checksum mismatch (the file was modified or damaged)")
    warnings.warn(PocketvecWarning(
        f"{source}: gallery format version 1 (its checksum does not cover the header); "
        "re-save it in the current version with `pocketvec gallery upgrade`"), stacklevel=4)
    src = Source(raw=payload)
    problem = checked_rows(src, layout, source)
    if problem is not None:
        raise GalleryError(problem)
    vectors = src.array(0, layout.dtype, (layout.count, layout.dim))
    maps = None if shape is None else Rows([src.array(layout.vector_bytes, LOCAL_DTYPE, (layout.count, *shape))],
                                           shape, LOCAL_DTYPE)
    return Decoded(header, vectors, rule, 1, maps, 1, len(raw))


def check_unit(vectors: np.ndarray, locals_: np.ndarray | None, source: str, why: str = DAMAGED) -> None:
    """Every row is a unit vector, and every location of its local map (or zero): see runtime.unit_norm."""
    bad = first_not_unit(vectors)
    if bad is not None:
        raise GalleryError(f"{source}: row {bad[0]}: {bad[1]} ({why})")
    bad = None if locals_ is None else first_not_unit(locals_, allow_zero=True)
    if bad is not None:
        row, location = divmod(bad[0], locals_.shape[1])
        raise GalleryError(f"{source}: row {row}, local map location {location}: {bad[1]} ({why})")


def write_atomic(path: str | Path, data: bytes | Iterator[bytes]) -> Path:
    """Write a gallery (or model) file atomically, from its bytes or chunks of them."""
    return write_bytes_atomic(path, data)
