"""Fitting a model's local codebook (runtime/local_codebook.py) on training items, once per model.

The codebook lives beside the weights as `local_codebook.safetensors` (float16 `rotation` and `centroids`) in the
run folder; `pocketvec export` puts it into the exported file's metadata (`local_rerank.codebook`), so ONNX and
Core ML files carry it and a compact gallery names its digest. It is fitted on the content checkerboard
locations (runtime/content_box.py) of training items' local maps (the run's encoder in PyTorch, fp32), never on a
benchmark tier or a user's gallery: OPQ in numpy, deterministic (a fixed seed, one BLAS thread).

    python -m pocketvec.export.local_codebook RUN_DIR ITEMS [ITEMS ...] [--max-locations 60000] [--seed 0]

Example (the shipped base, on the training pool's page and flag sets fetched with `pocketvec data fetch`):

    python -m pocketvec.export.local_codebook src/pocketvec/assets/base ~/.cache/pocketvec/latex-docs \\
        ~/.cache/pocketvec/kgeography-flags
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from threadpoolctl import threadpool_limits

from pocketvec.errors import ModelFileError
from pocketvec.runtime.content_box import checker_locations, content_box
from pocketvec.runtime.images import is_image_path, load_image
from pocketvec.runtime.local_codebook import CENTROIDS, HALF, LocalCodebook
from pocketvec.runtime.preprocess import preprocess, to_batch

CODEBOOK_FILE = "local_codebook.safetensors"
SUBVECTORS = 20  # code bytes per location (docs/lab/compact-local-maps.md: checker OPQ 20)
MAX_LOCATIONS = 60_000  # fitting sample
OPQ_ROUNDS = 8  # rotation updates
KMEANS_STEPS = 4  # k-means steps per round (the last round: FINAL_STEPS)
FINAL_STEPS = 20


def read_codebook(run_dir: str | Path) -> LocalCodebook | None:
    """The run folder's codebook, None when it has none."""
    path = Path(run_dir) / CODEBOOK_FILE
    if not path.is_file():
        return None
    from safetensors.numpy import load_file

    try:
        tensors = load_file(str(path))
        return LocalCodebook(tensors["rotation"], tensors["centroids"])
    except Exception as e:  # a damaged file: safetensors raises its own errors, a missing key KeyError
        raise ModelFileError(f"{path}: not a local codebook ({e}); fit it again with "
                             "`python -m pocketvec.export.local_codebook`") from e


def write_codebook(run_dir: str | Path, codebook: LocalCodebook) -> Path:
    from safetensors.numpy import save_file

    from pocketvec.atomic import atomic_output

    path = Path(run_dir) / CODEBOOK_FILE
    with atomic_output(path) as tmp:
        save_file({"rotation": np.ascontiguousarray(codebook.rotation, HALF),
                   "centroids": np.ascontiguousarray(codebook.centroids, HALF)}, str(tmp),
                  metadata={"digest": codebook.digest})
    return path


def fit_codebook(vectors: np.ndarray, subvectors: int = SUBVECTORS, seed: int = 0, rounds: int = OPQ_ROUNDS,
                 steps: int = KMEANS_STEPS, final_steps: int = FINAL_STEPS) -> LocalCodebook:
    """OPQ on (N, channels) unit vectors: a rotation to width = subvectors x ceil(channels / subvectors), then
    256 centroids per piece; alternating k-means steps with the rotation that best maps the vectors onto their
    coded form (orthogonal Procrustes), as faiss's OPQMatrix does. Deterministic for a seed."""
    x = np.ascontiguousarray(vectors, np.float64)
    channels = x.shape[1]
    width = subvectors * -(-channels // subvectors)
    rng = np.random.default_rng(seed)
    with threadpool_limits(1):
        q, _ = np.linalg.qr(rng.standard_normal((width, width)))
        rotation = q[:channels]  # (channels, width), orthonormal rows
        centroids = _initial_centroids(x @ rotation, subvectors, rng)
        for round_ in range(rounds + 1):
            y = x @ rotation
            centroids = _kmeans(y, centroids, final_steps if round_ == rounds else steps)
            if round_ < rounds:
                coded = _decode(_assign(y, centroids), centroids)
                u, _, vt = np.linalg.svd(x.T @ coded, full_matrices=False)
                rotation = u @ vt
    return LocalCodebook(rotation.astype(HALF), centroids.astype(HALF))


def _initial_centroids(y: np.ndarray, subvectors: int, rng: np.random.Generator) -> np.ndarray:
    picked = rng.choice(len(y), CENTROIDS, replace=len(y) < CENTROIDS)
    return np.stack(np.split(y[picked], subvectors, axis=1))  # (subvectors, 256, step)


def _assign(y: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    pieces = np.split(y, len(centroids), axis=1)
    return np.stack([((c**2).sum(axis=1) - 2 * p @ c.T).argmin(axis=1) for p, c in zip(pieces, centroids,
                                                                                         strict=True)], axis=1)


def _decode(codes: np.ndarray, centroids: np.ndarray) -> np.ndarray:
    return centroids[np.arange(len(centroids)), codes].reshape(len(codes), -1)


def _kmeans(y: np.ndarray, centroids: np.ndarray, steps: int) -> np.ndarray:
    """`steps` Lloyd steps per piece; an empty centroid keeps its place."""
    centroids = centroids.copy()
    pieces = np.split(y, len(centroids), axis=1)
    for _ in range(steps):
        codes = _assign(y, centroids)
        for j, piece in enumerate(pieces):
            counts = np.bincount(codes[:, j], minlength=CENTROIDS)
            sums = np.zeros_like(centroids[j])
            np.add.at(sums, codes[:, j], piece)
            filled = counts > 0
            centroids[j][filled] = sums[filled] / counts[filled, None]
    return centroids


@torch.no_grad()
def training_locations(model: torch.nn.Module, images: list[Path], max_locations: int = MAX_LOCATIONS,
                       seed: int = 0, batch_size: int = 16) -> np.ndarray:
    """The content checkerboard locations of the items' local maps (the encoder's, fp32), at most
    `max_locations` of them picked at random (seeded)."""
    spec = model.config.preprocess
    kept = []
    for start in range(0, len(images), batch_size):
        arrays = [load_image(p) for p in images[start : start + batch_size]]
        _, maps = model.eval().forward_with_locals(torch.from_numpy(to_batch([preprocess(a, spec) for a in arrays])))
        maps = maps.numpy()
        side = round(maps.shape[1] ** 0.5)
        for array, map_ in zip(arrays, maps, strict=True):
            box = content_box(array.shape[0], array.shape[1], spec, maps.shape[1])
            kept.append(map_[checker_locations(box, side)])
    flat = np.concatenate(kept)
    if len(flat) > max_locations:
        flat = flat[np.sort(np.random.default_rng(seed).choice(len(flat), max_locations, replace=False))]
    return flat


def item_images(folders: list[Path]) -> list[Path]:
    """Every image under the folders, sorted (hidden files left out)."""
    found = sorted(p for folder in folders for p in Path(folder).rglob("*") if p.is_file() and is_image_path(p)
                   and not any(part.startswith(".") for part in p.relative_to(folder).parts))
    if not found:
        raise ModelFileError(f"no images under {', '.join(map(str, folders))}")
    return found


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("run_dir", type=Path, help="run folder (model.safetensors + config.json)")
    parser.add_argument("items", type=Path, nargs="+", help="folders of training item images (never a benchmark's)")
    parser.add_argument("--max-locations", type=int, default=MAX_LOCATIONS)
    parser.add_argument("--subvectors", type=int, default=SUBVECTORS)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    from pocketvec.train.checkpoint import load_run

    torch.set_num_threads(1)
    images = item_images(args.items)
    vectors = training_locations(load_run(args.run_dir), images, args.max_locations, args.seed)
    codebook = fit_codebook(vectors, args.subvectors, args.seed)
    path = write_codebook(args.run_dir, codebook)
    print(f"wrote {path}: {codebook.subvectors} x {CENTROIDS} centroids, fitted on {len(vectors)} locations of "
          f"{len(images)} items; digest {codebook.digest}")


if __name__ == "__main__":
    main()
