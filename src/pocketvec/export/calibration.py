"""Calibration images for w8a8 export: simulated phone photos of real items, preprocessed exactly as the runtime does.

The activation ranges come from what the model sees on the phone: CALIBRATION_PHOTOS simulated photos of the
items (cropped as queries) plus the clean items themselves (cropped as items). CHECK_PHOTOS other photos
(another seed) are kept apart to check the quantized file against the float one (pocketvec.export.w8a8).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from pocketvec.errors import ConfigError, DatasetError
from pocketvec.runtime.images import content_hash, is_image_path, load_image
from pocketvec.runtime.metadata import INPUT_NAME
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess, to_batch

MAX_CALIBRATION_IMAGES = 64  # clean items read from the calibration folder (evenly spread)
CALIBRATION_PHOTOS = 128  # simulated phone photos whose activations set the 8-bit ranges
CHECK_PHOTOS = 64  # other simulated photos, for the parity check of the quantized file


def list_images(folder: str | Path, limit: int | None = None) -> list[Path]:
    """Image files under `folder` (recursive, sorted); `limit` keeps an evenly spread subset."""
    folder = Path(folder)
    if not folder.is_dir():
        raise DatasetError(f"{folder}: no such image folder")
    paths = sorted(p for p in folder.rglob("*") if p.is_file() and is_image_path(p))
    if not paths:
        raise DatasetError(f"{folder}: no images found")
    if limit and len(paths) > limit:
        paths = [paths[i] for i in np.linspace(0, len(paths) - 1, limit).round().astype(int)]
    return paths


def calibration_folder(run_config: dict, calibration_dir: str | Path | None) -> Path:
    """`--calibration DIR` when given, else the run's own training data (config["train"]["data"])."""
    if calibration_dir is not None:
        return Path(calibration_dir)
    data = (run_config.get("train") or {}).get("data")
    if data and Path(data).is_dir():
        return Path(data)
    raise ConfigError("w8a8 needs calibration images: the run records no data folder "
                      f"(train.data = {data!r}); pass --calibration DIR")


def load_batch(paths: list[Path], spec: PreprocessSpec) -> np.ndarray:
    """Images -> the model's NCHW float32 0-255 input, via the runtime's preprocessing."""
    return to_batch([preprocess(load_image(p), spec) for p in paths])


def phone_photos(items: list[np.ndarray], count: int, spec: PreprocessSpec, seed: int) -> np.ndarray:
    """`count` simulated phone photos (PhoneAugment, embedded backgrounds) cycling through `items`,
    preprocessed as queries (photo i with the query crops' i-th, cycling); deterministic for a seed."""
    from pocketvec.data.augment import PhoneAugment

    simulate, rng = PhoneAugment(output_size=spec.input_size), np.random.default_rng(seed)
    queries = spec.query_specs()
    return to_batch([preprocess(simulate(items[i % len(items)], rng), queries[i % len(queries)])
                     for i in range(count)])


@dataclass(frozen=True)
class CalibrationSets:
    """Pixels of one calibration folder's items: what sets the ranges and what checks the result."""

    photos: np.ndarray  # simulated phone photos (seed 0): the activation ranges
    items: np.ndarray  # the clean items: the activation ranges, and the check's gallery
    check_photos: np.ndarray  # other photos (seed 1): the check's queries

    @property
    def calibration(self) -> np.ndarray:
        return np.concatenate([self.photos, self.items])

    @property
    def check(self) -> np.ndarray:
        """The check's queries, then its gallery."""
        return np.concatenate([self.check_photos, self.items])


def calibration_sets(folder: str | Path, spec: PreprocessSpec) -> CalibrationSets:
    """The sets of `folder`'s images (read-only arrays), made once per process for the same image files and
    spec: an export in both formats, or both exports of one run, simulates the photos once."""
    paths = list_images(folder, MAX_CALIBRATION_IMAGES)
    return _sets(tuple((path, content_hash(path)) for path in paths), spec)


@lru_cache(maxsize=1)  # the base's sets are 145 MB
def _sets(files: tuple[tuple[Path, str], ...], spec: PreprocessSpec) -> CalibrationSets:
    items = [load_image(path) for path, _ in files]
    sets = CalibrationSets(phone_photos(items, CALIBRATION_PHOTOS, spec, seed=0),
                           to_batch([preprocess(item, spec) for item in items]),
                           phone_photos(items, CHECK_PHOTOS, spec, seed=1))
    for pixels in (sets.photos, sets.items, sets.check_photos):
        pixels.flags.writeable = False
    return sets


def calibration_feeds(pixels: np.ndarray, input_name: str = INPUT_NAME) -> Iterator[dict[str, np.ndarray]]:
    """A plain iterator of {input_name: (1, 3, S, S)} dicts, one image at a time."""
    for i in range(len(pixels)):
        yield {input_name: pixels[i : i + 1]}
