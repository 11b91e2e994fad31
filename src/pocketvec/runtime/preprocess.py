"""The one preprocessing spec shared by training eval, the runtime and the sample app.

Resizing is PIL's separable resampling algorithm (antialiased when shrinking) written out in
float64 numpy with a fixed accumulation order, so that sample_app/src/preprocess.js reproduces
it pixel for pixel. Each pass rounds to uint8 (floor(x + 0.5)) like PIL does.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from pocketvec.errors import ConfigError

CROP_MODES = ("center_crop", "scale_fit", "scale_fill")
RESAMPLE_FILTERS = {"box": 0.5, "bilinear": 1.0, "bicubic": 2.0}  # name -> support


def _check_choice(name: str, value: Any, choices: Any) -> None:
    if value not in choices:
        raise ConfigError(f"{name} must be one of {sorted(choices)}. Got {value!r}.")


def reject_unknown_keys(cls: type, data: dict[str, Any]) -> None:
    """Config classes refuse keys they do not know, naming them and the valid ones."""
    known = {f.name for f in fields(cls)}
    unknown = sorted(set(data) - known)
    if unknown:
        raise ConfigError(f"{cls.__name__} got unknown keys {unknown}. Valid keys: {sorted(known)}.")


@dataclass(frozen=True)
class PreprocessSpec:
    """How an image becomes the model's input: size, crop mode (as Vision's), resize filter.

    Normalisation (mean/std) lives inside the exported graph: the model takes RGB 0-255.
    """

    input_size: int = 224
    crop_mode: str = "center_crop"
    resample: str = "bilinear"
    mean: tuple[float, float, float] = (0.5, 0.5, 0.5)
    std: tuple[float, float, float] = (0.5, 0.5, 0.5)

    def __post_init__(self) -> None:
        if not isinstance(self.input_size, int) or not 32 <= self.input_size <= 1024:
            raise ConfigError(f"input_size must be an int in [32, 1024]. Got {self.input_size!r}.")
        _check_choice("crop_mode", self.crop_mode, CROP_MODES)
        _check_choice("resample", self.resample, RESAMPLE_FILTERS)
        object.__setattr__(self, "mean", tuple(float(v) for v in self.mean))
        object.__setattr__(self, "std", tuple(float(v) for v in self.std))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> PreprocessSpec:
        reject_unknown_keys(cls, data)
        return cls(**data)


def _filter(name: str, x: np.ndarray) -> np.ndarray:
    if name == "box":  # PIL: -0.5 < x <= 0.5 (asymmetric, so ties go to one side)
        return ((x > -0.5) & (x <= 0.5)).astype(np.float64)
    x = np.abs(x)
    if name == "bilinear":
        return np.where(x < 1.0, 1.0 - x, 0.0)
    a = -0.5  # bicubic, as PIL
    return np.where(
        x < 1.0,
        ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0,
        np.where(x < 2.0, (((x - 5.0) * x + 8.0) * x - 4.0) * a, 0.0),
    )


def resample_weights(in_size: int, out_size: int, resample: str) -> tuple[np.ndarray, np.ndarray]:
    """Per output pixel: source indices and normalised weights, shape (out_size, taps)."""
    scale = in_size / out_size
    filterscale = max(scale, 1.0)
    support = RESAMPLE_FILTERS[resample] * filterscale
    taps = math.ceil(support) * 2 + 1
    centers = (np.arange(out_size, dtype=np.float64) + 0.5) * scale
    xmin = np.maximum(np.trunc(centers - support + 0.5), 0).astype(np.int64)
    xmax = np.minimum(np.trunc(centers + support + 0.5), in_size).astype(np.int64)
    offsets = np.arange(taps)
    index = xmin[:, None] + offsets[None, :]
    valid = index < xmax[:, None]
    inverse = 1.0 / filterscale  # PIL multiplies by 1/filterscale, in this order of operations
    distance = (offsets[None, :] - centers[:, None] + xmin[:, None] + 0.5) * inverse
    weights = np.where(valid, _filter(resample, distance), 0.0)
    total = np.zeros(out_size)
    for t in range(taps):  # sequential sum: the JavaScript port adds in the same order
        total = total + weights[:, t]
    weights = np.where(total[:, None] != 0, weights / np.where(total == 0, 1.0, total)[:, None], 0.0)
    return np.minimum(index, in_size - 1), weights


def _round_u8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(values + 0.5), 0, 255).astype(np.uint8)


def resize(image: np.ndarray, width: int, height: int, resample: str = "bilinear") -> np.ndarray:
    """Resize an (H, W, C) uint8 array: horizontal pass, round, vertical pass, round."""
    _check_choice("resample", resample, RESAMPLE_FILTERS)
    out = image
    if out.shape[1] != width:
        index, weights = resample_weights(out.shape[1], width, resample)
        acc = np.zeros((out.shape[0], width, out.shape[2]))
        for t in range(index.shape[1]):
            acc = acc + out[:, index[:, t], :] * weights[None, :, t, None]
        out = _round_u8(acc)
    if out.shape[0] != height:
        index, weights = resample_weights(out.shape[0], height, resample)
        acc = np.zeros((height, out.shape[1], out.shape[2]))
        for t in range(index.shape[1]):
            acc = acc + out[index[:, t], :, :] * weights[:, t, None, None]
        out = _round_u8(acc)
    return np.ascontiguousarray(out)


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
        scaled = resize(image, new_w, new_h, spec.resample)
        top, left = (new_h - size) // 2, (new_w - size) // 2
        return np.ascontiguousarray(scaled[top : top + size, left : left + size])
    ratio = size / max(h, w)  # scale_fit: letterbox on black
    new_w, new_h = max(1, min(size, _round_half_up(w * ratio))), max(1, min(size, _round_half_up(h * ratio)))
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = resize(image, new_w, new_h, spec.resample)
    return canvas


def to_batch(images: list[np.ndarray]) -> np.ndarray:
    """Preprocessed (S, S, 3) uint8 images to the model's NCHW float32 0-255 input."""
    return np.ascontiguousarray(np.stack(images).transpose(0, 3, 1, 2).astype(np.float32))
