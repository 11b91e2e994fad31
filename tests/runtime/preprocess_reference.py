"""The preprocessing spec as it was first written: float64, one numpy operation per filter tap.

Slow (tens of ms per photo) but plainly the spec, line for line what sample_app/src/preprocess.js
does. The fast implementation in pocketvec.runtime.resample must give identical pixels; this file
is the oracle for that test. It is pocketvec's preprocess before the fast resampler (revision 410c92c^), which
experiments/bench_preprocess.py and bench_eval.py read from git as their "before".
"""

from __future__ import annotations

import math

import numpy as np

from pocketvec.runtime.preprocess import PreprocessSpec, resample_weights


def _round_u8(values: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(values + 0.5), 0, 255).astype(np.uint8)


def reference_resize(image: np.ndarray, width: int, height: int, resample: str = "bilinear") -> np.ndarray:
    """Horizontal pass, round, vertical pass, round; each sum in float64, taps in order."""
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


def reference_preprocess(image: np.ndarray, spec: PreprocessSpec) -> np.ndarray:
    size = spec.input_size
    h, w = image.shape[:2]
    if spec.crop_mode == "scale_fill":
        return reference_resize(image, size, size, spec.resample)
    if spec.crop_mode == "center_crop":
        ratio = size / min(h, w)
        new_w, new_h = max(size, _round_half_up(w * ratio)), max(size, _round_half_up(h * ratio))
        scaled = reference_resize(image, new_w, new_h, spec.resample)
        top, left = (new_h - size) // 2, (new_w - size) // 2
        return np.ascontiguousarray(scaled[top : top + size, left : left + size])
    ratio = size / max(h, w)
    new_w, new_h = max(1, min(size, _round_half_up(w * ratio))), max(1, min(size, _round_half_up(h * ratio)))
    canvas = np.zeros((size, size, 3), dtype=np.uint8)
    top, left = (size - new_h) // 2, (size - new_w) // 2
    canvas[top : top + new_h, left : left + new_w] = reference_resize(image, new_w, new_h, spec.resample)
    return canvas
