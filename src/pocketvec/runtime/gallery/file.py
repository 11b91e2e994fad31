"""The `.pvg` gallery file: bytes <-> (header, payload), exactly as docs/FORMATS.md describes.

Version 2, little-endian: magic `PVGALLRY`, uint32 version, uint32 header_len, a UTF-8 JSON header
padded with spaces so that the payload starts at a multiple of 16, the row-major embeddings, and a
32-byte sha256 of every byte before it: header and payload are both covered. Version 3 is version 2
with the rows' local maps for the local re-rank: a `local_shape` [locations, channels] in the header
and count x locations x channels float16 after the embeddings (written only for such galleries).
Version 1 (no trailer, a `payload_sha256` in the header) still reads, with a warning. A bad file
raises GalleryError.
"""

from __future__ import annotations

import hashlib
import json
import struct
import warnings
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from pocketvec.atomic import atomic_output, write_bytes_atomic
from pocketvec.bounded_json import loads_bounded
from pocketvec.errors import GalleryError, PocketvecWarning
from pocketvec.runtime.gallery.header import DTYPE_NAMES, check_header
from pocketvec.runtime.metadata import AcceptRule
from pocketvec.runtime.unit_norm import first_not_unit

MAGIC = b"PVGALLRY"
VERSION = 2
LOCALS_VERSION = 3  # version 2 + local maps
READABLE_VERSIONS = (1, 2, 3)
LOCAL_DTYPE = np.dtype("<f2")
PREAMBLE = struct.Struct("<8sII")  # magic, version, header_len
CHECKSUM_SIZE = 32  # version 2: sha256 of preamble + header + payload, after the payload
ALIGN = 16
MAX_HEADER_BYTES = 256 << 20
DTYPES = {name: np.dtype({"float32": "<f4", "float16": "<f2", "int8": "i1"}[name]) for name in DTYPE_NAMES}


@dataclass(frozen=True)
class Decoded:
    header: dict[str, Any]
    vectors: np.ndarray
    accept_rule: AcceptRule | None
    version: int
    locals: np.ndarray | None = None  # (count, locations, channels) float16, version 3


def encode(header: dict[str, Any], payload: np.ndarray, locals_: np.ndarray | None = None) -> bytes:
    """The file's bytes for a header and a (count, dim) payload: version 2, or version 3 with the rows'
    local maps (the header then holds `local_shape`)."""
    data = np.ascontiguousarray(payload, dtype=DTYPES[header["dtype"]]).tobytes()
    if locals_ is not None:
        data += np.ascontiguousarray(locals_, dtype=LOCAL_DTYPE).tobytes()
    body = _preamble_and_header(header, locals_ is not None) + data
    return body + hashlib.sha256(body).digest()


def _preamble_and_header(header: dict[str, Any], has_locals: bool) -> bytes:
    text = json.dumps(_whole_floats_as_ints(header), ensure_ascii=False, sort_keys=True, allow_nan=False,
                      separators=(",", ":")).encode("utf-8")
    text += b" " * ((-(PREAMBLE.size + len(text))) % ALIGN)
    return PREAMBLE.pack(MAGIC, LOCALS_VERSION if has_locals else VERSION, len(text)) + text


def write_streamed(path: str | Path, header: dict[str, Any], payload: np.ndarray,
                   local_chunks: Iterable[np.ndarray] | None = None) -> Path:
    """Write the file `encode` makes, atomically, the local maps a chunk of rows at a time (a gallery too large
    to hold as bytes in memory twice). The chunks must hold `header["count"]` rows in all."""
    with atomic_output(Path(path)) as tmp, open(tmp, "wb") as f:
        digest = hashlib.sha256()
        for part in _streamed_parts(header, payload, local_chunks, str(path)):
            digest.update(part)
            f.write(part)
        f.write(digest.digest())
    return Path(path)


def _streamed_parts(header: dict[str, Any], payload: np.ndarray, local_chunks: Iterable[np.ndarray] | None,
                    source: str) -> Iterator[bytes | memoryview]:
    yield _preamble_and_header(header, local_chunks is not None)
    yield memoryview(np.ascontiguousarray(payload, dtype=DTYPES[header["dtype"]])).cast("B")
    rows = 0
    for chunk in local_chunks or ():
        rows += len(chunk)
        yield memoryview(np.ascontiguousarray(chunk, dtype=LOCAL_DTYPE)).cast("B")
    if local_chunks is not None and rows != header["count"]:
        raise GalleryError(f"{source}: got local maps for {rows} rows, the header counts {header['count']}")


def _whole_floats_as_ints(value: Any) -> Any:
    """1.0 -> 1, as JavaScript's JSON.stringify writes it: the sample app writes the same bytes."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    if isinstance(value, dict):
        return {k: _whole_floats_as_ints(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_whole_floats_as_ints(v) for v in value]
    return value


def decode(raw: bytes, source: str) -> Decoded:
    """Parse and verify a file's bytes; `source` names the file in every error."""
    if len(raw) < PREAMBLE.size:
        raise GalleryError(f"{source}: not a pocketvec gallery (file is {len(raw)} bytes, too short)")
    magic, version, header_len = PREAMBLE.unpack_from(raw)
    if magic != MAGIC:
        raise GalleryError(f"{source}: not a pocketvec gallery (magic {magic!r}, expected {MAGIC!r})")
    if version not in READABLE_VERSIONS:
        raise GalleryError(f"{source}: gallery format version {version} is not supported "
                           f"(this pocketvec reads {', '.join(map(str, READABLE_VERSIONS))})")
    if version >= 2:
        raw = _verified_body(raw, source)
    end = PREAMBLE.size + header_len
    if end > len(raw):
        raise GalleryError(f"{source}: truncated gallery (header needs {end} bytes, file has {len(raw)})")
    header = loads_bounded(raw[PREAMBLE.size : end], source, "gallery header", GalleryError, MAX_HEADER_BYTES)
    rule = check_header(header, source, version)
    dtype, count = DTYPES[header["dtype"]], header["count"]
    local_shape = tuple(header.get("local_shape") or ())
    vector_bytes = count * header["dim"] * dtype.itemsize
    map_bytes = local_shape[0] * local_shape[1] * LOCAL_DTYPE.itemsize if local_shape else 0
    expected = vector_bytes + count * map_bytes
    payload = raw[end:]
    if len(payload) != expected:
        maps = f" + {count} x {local_shape[0]} x {local_shape[1]} float16" if local_shape else ""
        raise GalleryError(
            f"{source}: {'truncated' if len(payload) < expected else 'oversized'} gallery payload "
            f"({len(payload)} bytes, expected {expected} for {count} x {header['dim']} {header['dtype']}{maps})"
        )
    if version == 1:
        _check_v1_payload(payload, header, source)
    vectors = np.frombuffer(payload[:vector_bytes], dtype=dtype).reshape(count, header["dim"]).copy()
    if vectors.dtype.kind == "f" and not np.isfinite(vectors).all():
        raise GalleryError(f"{source}: gallery holds non-finite embeddings")
    locals_ = None
    if local_shape:
        locals_ = np.frombuffer(payload[vector_bytes:], dtype=LOCAL_DTYPE).reshape(count, *local_shape).copy()
        if not np.isfinite(locals_).all():
            raise GalleryError(f"{source}: gallery holds non-finite local maps")
    check_unit(vectors, locals_, source)
    return Decoded(header, vectors, rule, version, locals_)


DAMAGED = "the gallery was edited or damaged; rebuild it"


def check_unit(vectors: np.ndarray, locals_: np.ndarray | None, source: str, why: str = DAMAGED) -> None:
    """Every row is a unit vector, and every location of its local map (or zero): see runtime.unit_norm."""
    bad = first_not_unit(vectors)
    if bad is not None:
        raise GalleryError(f"{source}: row {bad[0]}: {bad[1]} ({why})")
    bad = None if locals_ is None else first_not_unit(locals_, allow_zero=True)
    if bad is not None:
        row, location = divmod(bad[0], locals_.shape[1])
        raise GalleryError(f"{source}: row {row}, local map location {location}: {bad[1]} ({why})")


def _verified_body(raw: bytes, source: str) -> bytes:
    """Version 2: the bytes before the trailing checksum, once the checksum matches."""
    if len(raw) < PREAMBLE.size + CHECKSUM_SIZE:
        raise GalleryError(f"{source}: truncated gallery (no room for the {CHECKSUM_SIZE}-byte checksum)")
    body, stored = raw[:-CHECKSUM_SIZE], raw[-CHECKSUM_SIZE:]
    if hashlib.sha256(body).digest() != stored:
        raise GalleryError(f"{source}: gallery checksum mismatch (the file was modified, truncated or damaged)")
    return body


def _check_v1_payload(payload: bytes, header: dict[str, Any], source: str) -> None:
    if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
        raise GalleryError(f"{source}: gallery payload checksum mismatch (the file was modified or damaged)")
    warnings.warn(PocketvecWarning(
        f"{source}: gallery format version 1 (its checksum does not cover the header); "
        "re-save it as version 2 with `pocketvec gallery upgrade`"), stacklevel=3)


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write a gallery (or model) file atomically."""
    return write_bytes_atomic(path, data)
