"""Unit vectors, checked: a gallery's rows and local maps on load, a model's embeddings when it is opened.

Every embedding pocketvec makes is L2-normalised, so a cosine is a dot product and a score lies in [-1, 1];
a row that is not a unit vector (scaled, zeroed, edited) would answer with scores that mean nothing.
A float vector's norm may differ from 1 by UNIT_TOLERANCE (float16 storage, an fp16 or w8a8 model's own
rounding); an int8 row round(x * 127) is accepted when some unit vector x rounds to it (within the same
tolerance). A local map may also hold zero locations (features all zero there: F.normalize keeps them 0).
"""

from __future__ import annotations

import numpy as np

UNIT_TOLERANCE = 1e-2
INT8_SCALE = 127.0  # an int8 row stores round(x * 127), decoded as q / 127
CHUNK_VALUES = 1 << 19  # values checked at a time (a float64 copy of them stays in the CPU's cache)


def to_int8(unit_vectors: np.ndarray) -> np.ndarray:
    """The int8 codec of unit vectors, encoding: round(x * 127), clipped to [-127, 127]. Every int8 row
    (a gallery's, an int8 scan's) is made here."""
    x = np.asarray(unit_vectors, dtype=np.float32)
    return np.clip(np.rint(x * INT8_SCALE), -INT8_SCALE, INT8_SCALE).astype(np.int8)


def from_int8(rows: np.ndarray) -> np.ndarray:
    """The int8 codec of unit vectors, decoding: q / 127 in float32."""
    return rows.astype(np.float32) / np.float32(INT8_SCALE)


def dequantize(stored: np.ndarray) -> np.ndarray:
    """The stored form back to float32 (int8: q / 127)."""
    if stored.dtype == np.int8:
        return from_int8(stored)
    return stored.astype(np.float32)


def unit_rows(x: np.ndarray) -> np.ndarray:
    """Each vector along the last axis scaled to unit length (a zero vector stays zero), as float32."""
    return (x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)).astype(np.float32, copy=False)


def first_not_unit(vectors: np.ndarray, allow_zero: bool = False) -> tuple[int, str] | None:
    """(index, problem) of the first vector along the last axis (the others flattened, row-major) that is
    not a unit vector, or None when all are."""
    flat = vectors.reshape(-1, vectors.shape[-1]) if vectors.size else vectors.reshape(0, 1)
    step = max(1, CHUNK_VALUES // flat.shape[1])
    for start in range(0, len(flat), step):
        low, high = _norm_bounds(flat[start : start + step])
        bad = ~((low <= 1 + UNIT_TOLERANCE) & (high >= 1 - UNIT_TOLERANCE))
        if allow_zero:
            bad &= high != 0
        if bad.any():
            i = int(np.argmax(bad))
            if not np.isfinite(high[i]):
                return start + i, "non-finite values"
            norm = f"{low[i]:.4g}" if low[i] == high[i] else f"between {low[i]:.4g} and {high[i]:.4g} (int8 rounding)"
            return start + i, f"norm {norm}, not a unit vector"
    return None


def _norm_bounds(chunk: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The smallest and largest norm of what each stored vector can stand for: its own norm for floats;
    for int8, the norms of the unit-cube corners around q / 127 (every x with round(x * 127) == q)."""
    if chunk.dtype != np.int8:
        x = chunk.astype(np.float64)
        norm = np.sqrt(np.einsum("ij,ij->i", x, x))
        return norm, norm
    q = np.abs(chunk.astype(np.float64))
    low, high = np.maximum(q - 0.5, 0) / INT8_SCALE, (q + 0.5) / INT8_SCALE
    return np.sqrt(np.einsum("ij,ij->i", low, low)), np.sqrt(np.einsum("ij,ij->i", high, high))
