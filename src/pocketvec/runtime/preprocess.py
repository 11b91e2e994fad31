"""The one preprocessing spec shared by training eval, the runtime and the sample app.

Resizing is PIL's separable resampling algorithm (antialiased when shrinking) defined in float64
with a fixed accumulation order, so that sample_app/src/preprocess.js reproduces it pixel for
pixel. Each pass rounds to uint8 (floor(x + 0.5)) like PIL does. resample.py computes it fast.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np

from pocketvec.errors import ConfigError
from pocketvec.ranges import RANGES
from pocketvec.runtime.resample import RESAMPLE_FILTERS, resample_weights, resize_window

__all__ = ["CROP_MODES", "RESAMPLE_FILTERS", "PreprocessSpec", "preprocess", "resample_weights", "resize", "to_batch"]

CROP_MODES = ("center_crop", "scale_fit", "scale_fill")


def _check_choice(name: str, value: Any, choices: Any) -> None:
    if not isinstance(value, str) or value not in choices:
        raise ConfigError(f"{name} must be one of {sorted(choices)}. Got {value!r}.")


def reject_unknown_keys(cls: type, data: dict[str, Any]) -> None:
    """Config classes take a JSON object and refuse keys they do not know, naming them and the valid ones."""
    if not isinstance(data, dict):
        raise ConfigError(f"{cls.__name__} must be a JSON object. Got {type(data).__name__}.")
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{cls.__name__} got unknown keys {unknown}. Valid keys: {sorted(known)}.")


def crops_name(crops: tuple[str, ...]) -> str:
    """The name of a photos' crop: 'center_crop', or 'scale_fill + center_crop' for both, fused."""
    return " + ".join(crops)


def crops_from_name(name: str) -> tuple[str, ...]:
    """The crops a photos' crop's name (`crops_name`) stands for."""
    return tuple(name.split(" + "))


@dataclass(frozen=True)
class PreprocessSpec:
    """How an image becomes the model's input: size, crop mode (as Vision's), resize filter.

    `crop_mode` is the items' (the gallery's clean images); `query_crop_mode`, when set, is the query
    photos' (the shipped base: items `scale_fit`, every edge in view; photos `scale_fill`, every edge in view
    and no black bars, which the photo simulator never makes), or a list of crops: each photo is then embedded
    once per crop and the embeddings fused (`runtime/photo_crops.py`), so no framing of the photo loses the
    item. Normalisation (mean/std) lives inside the exported graph: the model takes RGB 0-255.
    """

    input_size: int = 224
    crop_mode: str = "center_crop"
    resample: str = "bilinear"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)
    query_crop_mode: str | tuple[str, ...] | None = None  # None: the photos are cropped as the items

    def __post_init__(self) -> None:
        RANGES["preprocess.input_size"].check("input_size", self.input_size)
        _check_choice("crop_mode", self.crop_mode, CROP_MODES)
        query = self.query_crop_mode
        if isinstance(query, (list, tuple)):
            if not query or len(set(query)) != len(query) or not all(isinstance(c, str) for c in query):
                raise ConfigError(f"query_crop_mode as a list must name distinct crops of {sorted(CROP_MODES)}. "
                                  f"Got {query!r}.")
            query = tuple(query) if len(query) > 1 else query[0]
            object.__setattr__(self, "query_crop_mode", query)
        for crop in (query,) if isinstance(query, str) or query is None else query:
            if crop is not None:
                _check_choice("query_crop_mode", crop, CROP_MODES)
        _check_choice("resample", self.resample, RESAMPLE_FILTERS)
        for name in ("mean", "std"):
            values = getattr(self, name)
            if not isinstance(values, (list, tuple)) or len(values) != 3:
                raise ConfigError(f"{name} must be a list of 3 numbers (R, G, B). Got {values!r}.")
            for value in values:
                RANGES[f"preprocess.{name}"].check(name, value)
            object.__setattr__(self, name, tuple(float(v) for v in values))

    @property
    def query_crops(self) -> tuple[str, ...]:
        """The crops a query photo is embedded with: `query_crop_mode`'s, else the items' crop."""
        query = self.query_crop_mode or self.crop_mode
        return query if isinstance(query, tuple) else (query,)

    def query_specs(self) -> tuple[PreprocessSpec, ...]:
        """The specs of query photos, one per crop: the same but for the crop mode."""
        return tuple(replace(self, crop_mode=crop, query_crop_mode=None) for crop in self.query_crops)

    def crop_description(self) -> str:
        """'scale_fit', or 'scale_fit (queries: center_crop)' when the photos are cropped otherwise
        ('scale_fill + center_crop' when they are embedded with both)."""
        query = crops_name(self.query_crops)
        return self.crop_mode if query == self.crop_mode else f"{self.crop_mode} (queries: {query})"

    def to_dict(self) -> dict[str, Any]:
        """As stored in configs and metadata; `query_crop_mode` only when set, so older files read the same."""
        data = asdict(self)
        if self.query_crop_mode is None:
            del data["query_crop_mode"]
        elif isinstance(self.query_crop_mode, tuple):
            data["query_crop_mode"] = list(self.query_crop_mode)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        reject_unknown_keys(cls, data)
        return cls(**data)


def resize(image: np.ndarray, width: int, height: int, resample: str = "bilinear") -> np.ndarray:
    """Resize an (H, W, C) uint8 array: horizontal pass, round, vertical pass, round."""
    _check_choice("resample", resample, RESAMPLE_FILTERS)
    return resize_window(image, width, height, resample)


def _round_half_up(value: float) -> int:
    return math.floor(value + 0.5)


def preprocess(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    """An upright RGB uint8 (H, W, 3) image to the model's (size, size, 3) uint8 input."""
    size = spec.input_size
    h, w = image.shape[:2]
    if spec.crop_mode == "scale_fill":
        return resize(image, size, size, spec.resample)
    if spec.crop_mode == "center_crop":
        ratio = size / min(h, w)
        new_w, new_h = max(size, _round_half_up(w * ratio)), max(size, _round_half_up(h * ratio))
        top, left = (new_h - size) // 2, (new_w - size) // 2
        return resize_window(image, new_w, new_h, spec.resample, (left, left + size), (top, top + size))
    ratio = size / max(h, w)  # scale_fit: letterbox on black
    new_w, new_h = max(1, min(size, _round_half_up(w * ratio))), max(1, min(size, _round_half_up(h * ratio)))
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resize(image, new_w, new_h, spec.resample)
    return canvas


def to_batch(images: list[np.ndarray]) -> np.ndarray:
    """Preprocessed (S, S, 3) uint8 images to the model's NCHW float32 0-255 input."""
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2).astype(np.float32))
