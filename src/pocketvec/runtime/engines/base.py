"""What every inference engine shares: preprocessing from the model's metadata, batching,
progress, and per-file error reporting. Subclasses only run a (N, S, S, 3) uint8 batch."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from pocketvec.errors import ImageLoadError, ModelFileError
from pocketvec.runtime.image_bounds import check_bounds
from pocketvec.runtime.images import load_image
from pocketvec.runtime.metadata import ModelMetadata
from pocketvec.runtime.preprocess import preprocess
from pocketvec.runtime.progress import progress_bar

ImageLike = np.ndarray | str | Path


@dataclass
class EmbedResult:
    """Embeddings of the files that decoded; the others are listed with their problem."""

    embeddings: np.ndarray  # (len(paths), dim) float32
    paths: list[Path] = field(default_factory=list)
    failures: list[ImageLoadError] = field(default_factory=list)


class Engine:
    """An exported pocketvec model; `embed` takes images or paths and returns (N, dim) float32."""

    name = "engine"

    def __init__(self, path: Path, metadata: ModelMetadata) -> None:
        self.path = path
        self.metadata = metadata

    def run_batch(self, batch: np.ndarray) -> np.ndarray:  # (N, S, S, 3) uint8 -> (N, dim)
        raise NotImplementedError

    def prepare(self, image: ImageLike) -> np.ndarray:
        """Load (if a path) and preprocess one image exactly as the phone does."""
        source = image if isinstance(image, (str, Path)) else "<array>"
        array = load_image(image) if isinstance(image, (str, Path)) else np.asarray(image)
        if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
            raise ImageLoadError(source, f"expected an RGB uint8 (H, W, 3) array, got {array.dtype} {array.shape}")
        check_bounds(array.shape[1], array.shape[0], self.metadata.preprocess, source)
        return preprocess(array, self.metadata.preprocess)

    def embed(self, images: Sequence[ImageLike], batch_size: int = 32, progress: bool = False) -> np.ndarray:
        """(N, dim) float32 for N images or paths; a broken file raises ImageLoadError naming it."""
        return self._embed(images, batch_size, progress, failures=None).embeddings

    def embed_files(self, paths: Sequence[str | Path], batch_size: int = 32, progress: bool = False) -> EmbedResult:
        """Embed image files; a file that does not decode is reported by name and the rest proceeds."""
        return self._embed([Path(p) for p in paths], batch_size, progress, failures=[])

    def _embed(self, images: Sequence[ImageLike], batch_size: int, progress: bool,
               failures: list[ImageLoadError] | None) -> EmbedResult:
        rows: list[np.ndarray] = []
        kept: list[ImageLike] = []
        with progress_bar(f"embedding ({self.name})", len(images), enabled=progress) as advance:
            for start in range(0, len(images), max(1, batch_size)):
                chunk, batch = images[start : start + batch_size], []
                for image in chunk:
                    try:
                        batch.append(self.prepare(image))
                        kept.append(image)
                    except ImageLoadError as e:
                        if failures is None:
                            raise
                        failures.append(e)
                if batch:
                    rows.append(self._checked(np.stack(batch)))
                advance(len(chunk))
        dim = self.metadata.embedding_dim
        embeddings = np.concatenate(rows) if rows else np.zeros((0, dim), dtype=np.float32)
        paths = [p for p in kept if isinstance(p, Path)]
        return EmbedResult(embeddings, paths, failures or [])

    def _checked(self, batch: np.ndarray) -> np.ndarray:
        out = np.asarray(self.run_batch(batch), dtype=np.float32)
        if out.shape != (len(batch), self.metadata.embedding_dim):
            raise ModelFileError(f"{self.path}: output shape {out.shape} does not match the metadata's "
                                 f"embedding_dim {self.metadata.embedding_dim}")
        return out
