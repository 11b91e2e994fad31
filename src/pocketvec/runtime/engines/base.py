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
from pocketvec.runtime.photo_crops import fuse_crops
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess
from pocketvec.runtime.progress import progress_bar
from pocketvec.runtime.unit_norm import first_not_unit

ImageLike = np.ndarray | str | Path


@dataclass
class EmbedResult:
    """Embeddings of the files that decoded; the others are listed with their problem."""

    embeddings: np.ndarray  # (len(paths), dim) float32
    paths: list[Path] = field(default_factory=list)
    failures: list[ImageLoadError] = field(default_factory=list)
    locals: np.ndarray | None = None  # (len(paths), locations, channels) when the model has a local re-rank
    sizes: np.ndarray | None = None  # (len(paths), 2) each image's (height, width) as decoded, upright


class Engine:
    """An exported pocketvec model; `embed` takes images or paths and returns (N, dim) float32."""

    name = "engine"

    def __init__(self, path: Path, metadata: ModelMetadata) -> None:
        self.path = path
        self.metadata = metadata

    def run_batch(self, batch: np.ndarray) -> np.ndarray:  # (N, S, S, 3) uint8 -> (N, dim)
        return self.run_outputs(batch)[0]

    def run_outputs(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """(embeddings, local maps or None); an engine overrides this or run_batch."""
        return self.run_batch(batch), None

    def prepare(self, image: ImageLike, query: bool = False) -> list[np.ndarray]:
        """Load (if a path) and preprocess one image exactly as the phone does: as an item, or with
        `query` as a photo to recognise (the metadata's query crops). One model input per crop."""
        return prepare_image(image, self.metadata.preprocess, query)

    def _prepared(self, image: ImageLike, query: bool) -> tuple[list[np.ndarray], tuple[int, int]]:
        """`prepare`'s inputs and the image's (height, width)."""
        source = image if isinstance(image, (str, Path)) else "<array>"
        array = load_image(image) if isinstance(image, (str, Path)) else np.asarray(image)
        return prepare_image(array, self.metadata.preprocess, query, source=source), array.shape[:2]

    def crops(self, query: bool) -> int:
        """Model inputs per image: 1 for items, the query crops for photos."""
        return len(self.metadata.preprocess.query_crops) if query else 1

    def embed(self, images: Sequence[ImageLike], batch_size: int = 32, progress: bool = False,
              query: bool = False) -> np.ndarray:
        """(N, dim) float32 for N images or paths (items, or with `query` photos to recognise); a broken
        file raises ImageLoadError naming it."""
        return self._embed(images, batch_size, progress, None, query).embeddings

    def embed_all(self, images: Sequence[ImageLike], batch_size: int = 32, progress: bool = False,
                  query: bool = False) -> EmbedResult:
        """As embed, with the local maps when the model has a local re-rank."""
        return self._embed(images, batch_size, progress, None, query)

    def embed_files(self, paths: Sequence[str | Path], batch_size: int = 32, progress: bool = False,
                    query: bool = False) -> EmbedResult:
        """Embed image files; a file that does not decode is reported by name and the rest proceeds."""
        return self._embed([Path(p) for p in paths], batch_size, progress, [], query)

    def _embed(self, images: Sequence[ImageLike], batch_size: int, progress: bool,
               failures: list[ImageLoadError] | None, query: bool) -> EmbedResult:
        rows: list[np.ndarray] = []
        maps: list[np.ndarray] = []
        kept: list[ImageLike] = []
        sizes: list[tuple[int, int]] = []
        with progress_bar(f"embedding ({self.name})", len(images), enabled=progress) as advance:
            for start in range(0, len(images), max(1, batch_size)):
                chunk, batch = images[start : start + batch_size], []
                for image in chunk:
                    try:
                        inputs, size = self._prepared(image, query)
                        batch += inputs
                        kept.append(image)
                        sizes.append(size)
                    except ImageLoadError as e:
                        if failures is None:
                            raise
                        failures.append(e)
                if batch:
                    embeddings, local = self.run_inputs(batch, self.crops(query))
                    rows.append(embeddings)
                    maps += [] if local is None else [local]
                advance(len(chunk))
        dim, rerank = self.metadata.embedding_dim, self.metadata.local_rerank
        embeddings = np.concatenate(rows) if rows else np.zeros((0, dim), dtype=np.float32)
        locals_ = None if rerank is None else np.concatenate(maps) if maps else np.zeros((0, *rerank.shape), np.float32)
        paths = [p for p in kept if isinstance(p, Path)]
        return EmbedResult(embeddings, paths, failures or [], locals_, np.array(sizes, np.int64).reshape(-1, 2))

    def run_inputs(self, inputs: Sequence[np.ndarray], crops: int = 1) -> tuple[np.ndarray, np.ndarray | None]:
        """Embed prepared model inputs (`prepare`'s), `crops` consecutive inputs per image: (embeddings,
        local maps or None), one per image."""
        return fuse_crops(*self._checked(np.stack(inputs)), crops)

    def _checked(self, batch: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        embeddings, local = self.run_outputs(batch)
        out = np.asarray(embeddings, dtype=np.float32)
        if out.shape != (len(batch), self.metadata.embedding_dim):
            raise ModelFileError(f"{self.path}: output shape {out.shape} does not match the metadata's "
                                 f"embedding_dim {self.metadata.embedding_dim}")
        rerank = self.metadata.local_rerank
        if rerank is None:
            return out, None
        local = None if local is None else np.asarray(local, dtype=np.float32)
        if local is None or local.shape != (len(batch), *rerank.shape):
            raise ModelFileError(f"{self.path}: local output shape {None if local is None else local.shape} does not "
                                 f"match the metadata's local_rerank ({rerank.locations} x {rerank.channels})")
        return out, local

    def check_probe(self) -> None:
        """Embed one fixed test image: refuse a model whose embedding is not a finite unit vector, or whose
        local map is not finite (NaN weights, a zeroed or rescaled head), before it answers any photo."""
        embeddings, local = self._checked(np.stack(self.prepare(probe_pattern(self.metadata.preprocess.input_size))))
        bad = first_not_unit(embeddings)
        if bad is not None:
            raise ModelFileError(f"{self.path}: its embedding of a test image has {bad[1]} (damaged or edited "
                                 "weights); export the model again")
        if local is not None and not np.isfinite(local).all():
            raise ModelFileError(f"{self.path}: its local map of a test image is not finite (damaged or edited "
                                 "weights); export the model again")


def prepare_image(image: ImageLike, spec: PreprocessSpec, query: bool = False,
                  source: str | Path | None = None) -> list[np.ndarray]:
    """Engine.prepare for the preprocessing `spec` (safe on any thread): one model input per crop; `source`
    names a decoded file's array in errors."""
    source = source or (image if isinstance(image, (str, Path)) else "<array>")
    array = load_image(image) if isinstance(image, (str, Path)) else np.asarray(image)
    if array.dtype != np.uint8 or array.ndim != 3 or array.shape[2] != 3:
        raise ImageLoadError(source, f"expected an RGB uint8 (H, W, 3) array, got {array.dtype} {array.shape}")
    specs = spec.query_specs() if query else (spec,)
    for each in specs:
        check_bounds(array.shape[1], array.shape[0], each, source)
    return [preprocess(array, each) for each in specs]


def probe_pattern(size: int) -> np.ndarray:
    """A (size, size, 3) uint8 image no file can change: red and blue ramps across, green down."""
    ramp = np.linspace(0, 255, size).round().astype(np.uint8)
    return np.stack(np.broadcast_arrays(ramp[None, :], ramp[:, None], ramp[None, ::-1]), axis=-1)
