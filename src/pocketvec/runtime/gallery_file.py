"""The `.pvg` gallery file: bytes <-> (header, payload), exactly as docs/FORMATS.md describes.

Little-endian: magic `PVGALLRY`, uint32 version, uint32 header_len, a UTF-8 JSON header padded
with spaces so that the payload starts at a multiple of 16, then the row-major embeddings.
Everything that can be checked is checked: a bad file raises GalleryError and nothing is changed.
"""

from __future__ import annotations

import hashlib
import json
import struct
from pathlib import Path
from typing import Any

import numpy as np

from pocketvec.atomic import write_bytes_atomic
from pocketvec.errors import GalleryError

MAGIC = b"PVGALLRY"
VERSION = 1
PREAMBLE = struct.Struct("<8sII")  # magic, version, header_len
ALIGN = 16
DTYPES = {"float32": np.dtype("<f4"), "float16": np.dtype("<f2"), "int8": np.dtype("i1")}
HEADER_KEYS = frozenset(
    {"embedding_space_id", "dim", "count", "dtype", "labels", "sources", "accept_rule", "payload_sha256", "created_by"}
)


def encode(header: dict[str, Any], payload: np.ndarray) -> bytes:
    """The file's bytes for a header (without payload_sha256) and a (count, dim) payload."""
    data = np.ascontiguousarray(payload, dtype=DTYPES[header["dtype"]]).tobytes()
    header = {**header, "payload_sha256": hashlib.sha256(data).hexdigest()}
    text = json.dumps(header, ensure_ascii=False, sort_keys=True).encode("utf-8")
    pad = (-(PREAMBLE.size + len(text))) % ALIGN
    text += b" " * pad
    return PREAMBLE.pack(MAGIC, VERSION, len(text)) + text + data


def decode(raw: bytes, source: str) -> tuple[dict[str, Any], np.ndarray]:
    """Parse and verify a file's bytes; `source` names the file in every error."""
    if len(raw) < PREAMBLE.size:
        raise GalleryError(f"{source}: not a pocketvec gallery (file is {len(raw)} bytes, too short)")
    magic, version, header_len = PREAMBLE.unpack_from(raw)
    if magic != MAGIC:
        raise GalleryError(f"{source}: not a pocketvec gallery (magic {magic!r}, expected {MAGIC!r})")
    if version != VERSION:
        raise GalleryError(f"{source}: gallery format version {version} is not supported "
                           f"(this pocketvec reads {VERSION})")
    end = PREAMBLE.size + header_len
    if end > len(raw):
        raise GalleryError(f"{source}: truncated gallery (header needs {end} bytes, file has {len(raw)})")
    try:
        header = json.loads(raw[PREAMBLE.size : end].decode("utf-8"))
    except (UnicodeDecodeError, ValueError) as e:
        raise GalleryError(f"{source}: gallery header is not valid JSON ({e})") from e
    _check_header(header, source)
    dtype = DTYPES[header["dtype"]]
    expected = header["count"] * header["dim"] * dtype.itemsize
    payload = raw[end:]
    if len(payload) != expected:
        raise GalleryError(
            f"{source}: {'truncated' if len(payload) < expected else 'oversized'} gallery payload "
            f"({len(payload)} bytes, expected {expected} for {header['count']} x {header['dim']} {header['dtype']})"
        )
    if hashlib.sha256(payload).hexdigest() != header["payload_sha256"]:
        raise GalleryError(f"{source}: gallery payload checksum mismatch (the file was modified or damaged)")
    vectors = np.frombuffer(payload, dtype=dtype).reshape(header["count"], header["dim"]).copy()
    if vectors.dtype.kind == "f" and not np.isfinite(vectors).all():
        raise GalleryError(f"{source}: gallery holds non-finite embeddings")
    return header, vectors


def _check_header(header: Any, source: str) -> None:
    if not isinstance(header, dict):
        raise GalleryError(f"{source}: gallery header must be a JSON object")
    missing = sorted(HEADER_KEYS - set(header))
    if missing:
        raise GalleryError(f"{source}: gallery header lacks keys {missing}")
    if header["dtype"] not in DTYPES:
        raise GalleryError(f"{source}: gallery dtype must be one of {sorted(DTYPES)}. Got {header['dtype']!r}.")
    count, dim = header["count"], header["dim"]
    if not (isinstance(count, int) and isinstance(dim, int) and count >= 0 and dim > 0):
        raise GalleryError(f"{source}: gallery count/dim must be non-negative integers. Got {count!r}, {dim!r}.")
    for key in ("labels", "sources"):
        values = header[key]
        if not isinstance(values, list) or len(values) != count or not all(isinstance(v, str) for v in values):
            raise GalleryError(f"{source}: gallery '{key}' must be a list of {count} strings")


def write_atomic(path: str | Path, data: bytes) -> Path:
    """Write a gallery (or model) file atomically."""
    return write_bytes_atomic(path, data)
