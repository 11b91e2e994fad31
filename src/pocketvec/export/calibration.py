"""Calibration images for w8a8 export: real item images, preprocessed exactly as the runtime does."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import numpy as np

from pocketvec.errors import ConfigError, DatasetError
from pocketvec.runtime.images import is_image_path, load_image
from pocketvec.runtime.metadata import INPUT_NAME
from pocketvec.runtime.preprocess import PreprocessSpec, preprocess, to_batch

MAX_CALIBRATION_IMAGES = 64


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


def calibration_feeds(pixels: np.ndarray, input_name: str = INPUT_NAME) -> Iterator[dict[str, np.ndarray]]:
    """A plain iterator of {input_name: (1, 3, S, S)} dicts, one image at a time."""
    for i in range(len(pixels)):
        yield {input_name: pixels[i : i + 1]}
