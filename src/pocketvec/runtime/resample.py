"""PIL's separable resampling (antialiased when shrinking), fast and bit-exact to the float64 spec.

The spec (what sample_app/src/preprocess.js reproduces) computes each output value as a float64
sum over the filter taps, added in tap order, then rounds with floor(x + 0.5). Doing that tap by
tap in numpy costs tens of milliseconds per photo. Here one pass is a few small float32 matrix
products (the filter as a banded matrix, cut into blocks of output pixels, precomputed per size).
float32 differs from the spec's sum by far less than `tolerance`, so every value further than that
from a rounding tie (x.5) rounds the same way; the few that are that close are recomputed exactly
as the spec does: float64, taps in order. The products are small (a few MFLOP each), so they run
on one BLAS thread: OpenBLAS's thread pool cost 20-200x the work whenever the cores were busy.
The working arrays (a few MB for a photo) are reused per thread (`SCRATCH`): a fresh one costs a page
fault per 4 KB page on first touch, which was more than half of a 480x640 photo's time.
"""

from __future__ import annotations

import functools
import math
import threading
from dataclasses import dataclass

import numpy as np
from threadpoolctl import ThreadpoolController

RESAMPLE_FILTERS = {"box": 0.5, "bilinear": 1.0, "bicubic": 2.0}  # name -> support
BLOCK = 12  # output pixels per matrix product: wider blocks multiply more zeros, narrower ones make more calls
_FLOAT32_UNIT = 2.0**-24
STRIP_VALUES = 1 << 20  # input values made float32 at a time by the horizontal pass (each row is independent)
SCRATCH_VALUES = 1 << 20  # working arrays up to this many values are kept for the next call, larger ones are not


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


class _OneBlasThread:
    """numpy's BLAS on one thread while any thread of the process is inside (`with ONE_BLAS_THREAD:`);
    the setting from before comes back when the last one leaves."""

    def __init__(self) -> None:
        self._lock, self._inside, self._limiter = threading.Lock(), 0, None
        self._controller: ThreadpoolController | None = None

    def __enter__(self) -> None:
        with self._lock:
            if self._inside == 0:
                self._controller = self._controller or ThreadpoolController()  # numpy's BLAS is loaded by now
                self._limiter = self._controller.limit(limits=1, user_api="blas")
            self._inside += 1

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._inside -= 1
            if self._inside == 0:
                self._limiter.restore_original_limits()


ONE_BLAS_THREAD = _OneBlasThread()


class _Scratch(threading.local):
    """Working arrays kept per thread and reused by the next resize (up to SCRATCH_VALUES values each).
    A name's array is overwritten by the next `take` of that name: only this module's own passes use them,
    and nothing returned to a caller is one."""

    def __init__(self) -> None:
        self.buffers: dict[str, np.ndarray] = {}

    def take(self, name: str, shape: tuple[int, ...], dtype: type = np.float32) -> np.ndarray:
        size = math.prod(shape)
        if size > SCRATCH_VALUES:
            return np.empty(shape, dtype)
        buffer = self.buffers.get(name)
        if buffer is None or buffer.size < size or buffer.dtype != dtype:
            buffer = self.buffers[name] = np.empty(size, dtype)
        return buffer[:size].reshape(shape)


SCRATCH = _Scratch()


@dataclass(frozen=True)
class _Block:
    """Output pixels [start, stop) read input pixels [lo, hi) through `matrix` (hi - lo, stop - start)."""

    start: int
    stop: int
    lo: int
    hi: int
    matrix: np.ndarray


@dataclass(frozen=True)
class PassPlan:
    """One resampling pass from `in_size` to the output pixels [first, last) of `out_size`."""

    index: np.ndarray  # (outputs, taps) source pixel of each tap
    weights: np.ndarray  # (outputs, taps) float64, the spec's weights
    taps: int  # taps up to the last nonzero weight of any output (the rest add exact zeros)
    blocks: tuple[_Block, ...]
    tolerance: float  # bound on |float32 product - float64 tap-order sum|, with a 4x margin
    lo: int  # the input pixels [lo, hi) that these outputs read
    hi: int
    overshoots: bool  # negative weights (bicubic): values may leave 0-255 and are clipped


@functools.lru_cache(maxsize=128)
def pass_plan(in_size: int, out_size: int, resample: str, first: int, last: int) -> PassPlan:
    index, weights = resample_weights(in_size, out_size, resample)
    index, weights = index[first:last], weights[first:last]
    blocks = []
    for start in range(0, len(index), BLOCK):
        idx, w = index[start : start + BLOCK], weights[start : start + BLOCK]
        rows, taps = np.nonzero(w)
        lo, hi = (int(idx[rows, taps].min()), int(idx[rows, taps].max()) + 1) if len(rows) else (0, 1)
        matrix = np.zeros((hi - lo, len(idx)), np.float32)
        matrix[idx[rows, taps] - lo, rows] = w[rows, taps]
        blocks.append(_Block(start, start + len(idx), lo, hi, matrix))
    # float32 error of a dot product of `taps` terms (+1 for rounding the weights, +1 spare),
    # values up to 255; the float64 reference is 2^29 times closer to the exact sum.
    weight_sum = float(np.abs(weights).sum(axis=1).max(initial=1.0))
    tolerance = 4.0 * (weights.shape[1] + 2) * _FLOAT32_UNIT * 256.0 * weight_sum
    for array in (index, weights):
        array.flags.writeable = False
    lo, hi = min((b.lo for b in blocks), default=0), max((b.hi for b in blocks), default=1)
    nonzero_taps = np.flatnonzero((weights != 0).any(axis=0))
    taps = int(nonzero_taps[-1]) + 1 if len(nonzero_taps) else 0
    return PassPlan(index, weights, taps, tuple(blocks), tolerance, lo, hi, bool((weights < 0).any()))


def resample_axis(pixels: np.ndarray, plan: PassPlan, axis: int, offset: int = 0,
                  out: np.ndarray | None = None) -> np.ndarray:
    """Resample a 2-D array of whole pixel values 0-255 (any dtype, float32 is fastest) along
    `axis` (1: each row, 0: each column) to the plan's outputs, rounded as the spec: float32, into `out`
    when given (else a new array). `pixels` may start at input pixel `offset` along `axis` (it must hold
    [plan.lo, plan.hi))."""
    source = pixels if pixels.dtype == np.float32 else pixels.astype(np.float32)
    shape = (pixels.shape[0], len(plan.index)) if axis == 1 else (len(plan.index), pixels.shape[1])
    values = SCRATCH.take("values", shape)
    for b in plan.blocks:
        lo, hi = b.lo - offset, b.hi - offset
        if axis == 1:
            np.matmul(source[:, lo:hi], b.matrix, out=values[:, b.start : b.stop])
        else:
            np.matmul(b.matrix.T, source[lo:hi], out=values[b.start : b.stop])
    rounded = np.empty(shape, np.float32) if out is None else out
    np.rint(values, out=rounded)  # = floor(x + 0.5) except at ties, which are recomputed below
    np.subtract(values, rounded, out=values)
    np.abs(values, out=values)
    near = np.greater(values, 0.5 - plan.tolerance, out=SCRATCH.take("near", shape, np.bool_))
    near_tie = np.flatnonzero(near)
    if len(near_tie):
        rows, cols = np.divmod(near_tie, shape[1])
        rounded[rows, cols] = np.floor(_tap_order_sum(source, plan, rows, cols, axis, offset) + 0.5)
    return np.clip(rounded, 0, 255, out=rounded) if plan.overshoots else rounded


def _tap_order_sum(pixels: np.ndarray, plan: PassPlan, rows: np.ndarray, cols: np.ndarray, axis: int,
                   offset: int) -> np.ndarray:
    """The spec's own float64 sum, taps added in order, for the chosen output values only."""
    out, other = (cols, rows) if axis == 1 else (rows, cols)
    width = pixels.shape[1]
    # Tap t of an output reads input pixel index[out, 0] + t: as flat positions in `pixels`, one
    # take per tap. A tap past the last pixel or outside the given window has weight 0 (it adds 0
    # wherever it reads), so positions are clipped to the array; taps past every output's last nonzero
    # weight are skipped (adding +0.0 leaves the sum as it is).
    first = plan.index[out, 0] - offset
    base, stride = (other * width + first, 1) if axis == 1 else (first * width + other, width)
    flat, weights = pixels.reshape(-1), plan.weights[out]
    total = np.zeros(len(rows))
    for t in range(plan.taps):
        total += flat.take(base + t * stride, mode="clip") * weights[:, t]  # float32 * float64: float64
    return total


def resize_window(image: np.ndarray, width: int, height: int, resample: str,
                  cols: tuple[int, int] | None = None, rows: tuple[int, int] | None = None) -> np.ndarray:
    """Resize an (H, W, C) uint8 image to (height, width) and return only the window rows x cols.

    Horizontal pass, round, vertical pass, round (the spec's order); a side whose size does not
    change is not resampled. Pixels outside the window are never computed: each depends only on
    its own taps.
    """
    with ONE_BLAS_THREAD:
        return _resize_window(image, width, height, resample, cols or (0, width), rows or (0, height))


def _resize_window(image: np.ndarray, width: int, height: int, resample: str, cols: tuple[int, int],
                   rows: tuple[int, int]) -> np.ndarray:
    h, w, channels = image.shape
    (left, right), (top, bottom) = cols, rows
    vertical = pass_plan(h, height, resample, top, bottom) if h != height else None
    y0, y1 = (vertical.lo, vertical.hi) if vertical else (top, bottom)  # the input rows still needed
    planar = image[y0:y1].transpose(0, 2, 1)  # (rows, channels, w): each channel's row is contiguous
    if w != width:
        horizontal = pass_plan(w, width, resample, left, right)
        x0, x1 = horizontal.lo, horizontal.hi  # only the input columns the window reads become float32
        passed = SCRATCH.take("horizontal", (y1 - y0, channels, right - left))
        step = max(1, STRIP_VALUES // (channels * (x1 - x0)))  # a strip of rows at a time: no full-size float copy
        for r in range(0, y1 - y0, step):
            strip = planar[r : r + step, :, x0:x1]
            # uint8 reordered, then widened: faster than widening while reordering
            strip_u8 = SCRATCH.take("strip_u8", strip.shape, np.uint8)
            np.copyto(strip_u8, strip)
            strip_f32 = SCRATCH.take("strip", (strip_u8.size // (x1 - x0), x1 - x0))
            np.copyto(strip_f32, strip_u8.reshape(strip_f32.shape))
            resample_axis(strip_f32, horizontal, 1, x0, out=passed[r : r + step].reshape(-1, right - left))
        planar = passed
    else:
        planar = planar[:, :, left:right]
    if vertical:
        flat = np.ascontiguousarray(planar).reshape(y1 - y0, -1)
        target = SCRATCH.take("vertical", (bottom - top, flat.shape[1]))
        planar = resample_axis(flat, vertical, 0, y0, out=target).reshape(-1, channels, right - left)
    result = np.empty((planar.shape[0], right - left, channels), np.uint8)
    np.copyto(result.transpose(0, 2, 1), planar, casting="unsafe")  # whole values 0-255
    return result
