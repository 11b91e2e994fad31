"""A model's local codebook: how a gallery codes its items' local maps compactly (`runtime/gallery/coded.py`).

Optimised product quantisation (OPQ): a location's unit vector x (channels) is rotated, y = x @ rotation
(channels x width, orthonormal rows), y is cut into `subvectors` pieces of width / subvectors values and each
piece is replaced by the index of its nearest centroid (256 per piece: one byte). Decoding looks the
centroids up, rotates back (y_hat @ rotation.T) and renormalises. Both arrays are stored as float16 and used
as the float32 values of those halves, so every reader (this module, the sample app) decodes the same vectors;
the digest covers those bytes, and a gallery records the digest of the codebook that coded it.

The codebook is fitted per model on training items (`pocketvec.export.local_codebook`), never on a user's
gallery; it travels in the model's metadata (`local_rerank.codebook`). Encoding and decoding need numpy only.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from pocketvec.checks import check_number
from pocketvec.errors import ConfigError
from pocketvec.runtime.weights_digest import check_digest

CENTROIDS = 256  # per sub-vector: one byte per code
HALF = np.dtype("<f2")
KEYS = {"subvectors", "width", "rotation", "centroids", "digest"}


def codebook_digest(rotation: np.ndarray, centroids: np.ndarray) -> str:
    """sha256 over the shapes and the float16 bytes of both arrays."""
    digest = hashlib.sha256()
    for array in (rotation, centroids):
        digest.update(np.asarray(array.shape, "<u4").tobytes() + np.ascontiguousarray(array, HALF).tobytes())
    return "sha256:" + digest.hexdigest()


@dataclass(frozen=True, eq=False)
class LocalCodebook:
    """rotation (channels, width) and centroids (subvectors, 256, width / subvectors), float16 values."""

    rotation: np.ndarray
    centroids: np.ndarray
    digest: str = field(default="")

    def __post_init__(self) -> None:
        rotation = np.asarray(self.rotation, HALF)
        centroids = np.asarray(self.centroids, HALF)
        if rotation.ndim != 2 or centroids.ndim != 3 or centroids.shape[1] != CENTROIDS or \
                centroids.shape[0] * centroids.shape[2] != rotation.shape[1] or rotation.shape[1] < rotation.shape[0]:
            raise ConfigError(f"local codebook: a rotation (channels, width) and centroids (subvectors, {CENTROIDS}, "
                              f"width / subvectors); got {rotation.shape} and {centroids.shape}")
        if not (np.isfinite(rotation).all() and np.isfinite(centroids).all()):
            raise ConfigError("local codebook: its values must be finite")
        check_number("local codebook subvectors", centroids.shape[0], 1, 255, integer=True)
        digest = codebook_digest(rotation, centroids)
        if self.digest and self.digest != digest:
            raise ConfigError(f"local codebook: its digest is {self.digest}, its values' is {digest} (damaged or "
                              "edited); export the model again")
        object.__setattr__(self, "rotation", rotation)
        object.__setattr__(self, "centroids", centroids)
        object.__setattr__(self, "digest", digest)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, LocalCodebook) and other.digest == self.digest

    def __hash__(self) -> int:
        return hash(self.digest)

    @property
    def channels(self) -> int:
        return self.rotation.shape[0]

    @property
    def subvectors(self) -> int:
        """Code bytes per location."""
        return self.centroids.shape[0]

    def encode(self, vectors: np.ndarray) -> np.ndarray:
        """(N, channels) unit vectors -> (N, subvectors) uint8 codes: each rotated piece's nearest centroid (in
        float64, as the sample app)."""
        rotated = np.asarray(vectors, np.float64) @ self.rotation.astype(np.float64)
        m, _, step = self.centroids.shape
        codes = np.empty((len(rotated), m), np.uint8)
        for j, centroids in enumerate(self.centroids.astype(np.float64)):
            piece = rotated[:, j * step : (j + 1) * step]
            distances = (centroids**2).sum(axis=1) - 2 * piece @ centroids.T  # ||piece||^2 is the same for all
            codes[:, j] = distances.argmin(axis=1)
        return codes

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """(N, subvectors) codes -> (N, channels) float32 unit vectors (computed in float64, as the app does)."""
        codes = np.asarray(codes, np.uint8)
        m = self.subvectors
        pieces = self.centroids.astype(np.float64)[np.arange(m), codes]  # (N, m, step)
        vectors = pieces.reshape(len(codes), -1) @ self.rotation.astype(np.float64).T
        norms = np.sqrt((vectors * vectors).sum(axis=1, keepdims=True))
        return (vectors / np.where(norms > 0, norms, 1.0)).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """As the model's metadata holds it: both arrays as base64 of their little-endian float16 bytes."""
        return {"subvectors": self.subvectors, "width": self.rotation.shape[1], "digest": self.digest,
                "rotation": base64.b64encode(self.rotation.tobytes()).decode("ascii"),
                "centroids": base64.b64encode(self.centroids.tobytes()).decode("ascii")}

    @classmethod
    def from_dict(cls, data: Any, channels: int) -> LocalCodebook:
        if not isinstance(data, dict) or set(data) != KEYS:
            raise ConfigError(f"local_rerank codebook must be an object with {', '.join(sorted(KEYS))}; got "
                              f"{sorted(data) if isinstance(data, dict) else type(data).__name__}")
        check_number("local codebook width", data["width"], channels, 4096, integer=True)
        check_number("local codebook subvectors", data["subvectors"], 1, 255, integer=True)
        check_digest("local codebook digest", data["digest"])
        width, m = data["width"], data["subvectors"]
        if width % m:
            raise ConfigError(f"local codebook: width {width} is not a multiple of its {m} subvectors")
        rotation = _halves(data["rotation"], (channels, width), "rotation")
        centroids = _halves(data["centroids"], (m, CENTROIDS, width // m), "centroids")
        return cls(rotation, centroids, data["digest"])


def _halves(text: Any, shape: tuple[int, ...], name: str) -> np.ndarray:
    if not isinstance(text, str):
        raise ConfigError(f"local codebook {name} must be base64 text")
    try:
        raw = base64.b64decode(text, validate=True)
    except ValueError as e:
        raise ConfigError(f"local codebook {name} is not base64 ({e})") from e
    if len(raw) != int(np.prod(shape)) * HALF.itemsize:
        raise ConfigError(f"local codebook {name}: {len(raw)} bytes, expected {int(np.prod(shape)) * 2} for {shape}")
    return np.frombuffer(raw, HALF).reshape(shape)
