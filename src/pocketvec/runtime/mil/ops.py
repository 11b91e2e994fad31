"""numpy implementations of the MIL operations pocketvec's encoders compile to (Core ML semantics).

Each op takes its named inputs (numpy arrays, 0-d for scalars) and returns its output array.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import numpy as np

Op = Callable[..., np.ndarray]
OPS: dict[str, Op] = {}

_CAST = {"fp16": np.float16, "fp32": np.float32, "int32": np.int32, "int8": np.int8, "uint8": np.uint8,
         "bool": np.bool_, "int16": np.int16, "uint16": np.uint16, "fp64": np.float64, "int64": np.int64}


def op(name: str) -> Callable[[Op], Op]:
    def register(fn: Op) -> Op:
        OPS[name] = fn
        return fn
    return register


def _axes(axes, rank: int) -> tuple[int, ...]:
    return tuple(int(a) % rank for a in np.atleast_1d(axes))


for _name, _fn in {"add": np.add, "sub": np.subtract, "mul": np.multiply, "real_div": np.divide,
                   "maximum": np.maximum, "minimum": np.minimum, "pow": np.power}.items():
    OPS[_name] = lambda x, y, _fn=_fn: _fn(x, y)
for _name, _fn in {"sqrt": np.sqrt, "exp": np.exp, "tanh": np.tanh, "abs": np.abs, "rsqrt": lambda x: 1 / np.sqrt(x),
                   "relu": lambda x: np.maximum(x, 0), "sigmoid": lambda x: 1 / (1 + np.exp(-x)),
                   "silu": lambda x: x / (1 + np.exp(-x))}.items():
    OPS[_name] = lambda x, _fn=_fn, **_: _fn(x)


@op("clip")
def clip(x, alpha, beta):
    return np.minimum(np.maximum(x, alpha), beta)


@op("relu6")
def relu6(x):
    return np.minimum(np.maximum(x, 0), 6)


@op("thresholded_relu")
def thresholded_relu(x, alpha=1.0):
    return np.where(x < alpha, np.zeros_like(x), x)


@op("sigmoid_hard")
def sigmoid_hard(x, alpha=0.2, beta=0.5):
    return np.minimum(np.maximum(alpha * x + beta, 0), 1).astype(x.dtype)


@op("reduce_mean")
def reduce_mean(x, axes=None, keep_dims=False):
    axes = tuple(range(x.ndim)) if axes is None else _axes(axes, x.ndim)
    return np.mean(x, axis=axes, keepdims=bool(keep_dims), dtype=np.float32).astype(x.dtype)


@op("reduce_l2_norm")
def reduce_l2_norm(x, axes=None, keep_dims=False):
    axes = tuple(range(x.ndim)) if axes is None else _axes(axes, x.ndim)
    x32 = x.astype(np.float32)
    return np.sqrt(np.sum(x32 * x32, axis=axes, keepdims=bool(keep_dims))).astype(x.dtype)


@op("reshape")
def reshape(x, shape):
    return x.reshape(tuple(int(s) for s in shape))


@op("expand_dims")
def expand_dims(x, axes):
    rank = x.ndim + len(np.atleast_1d(axes))
    return np.expand_dims(x, _axes(axes, rank))


@op("squeeze")
def squeeze(x, axes=None):
    return np.squeeze(x) if axes is None else np.squeeze(x, axis=_axes(axes, x.ndim))


@op("tile")
def tile(x, reps):
    return np.tile(x, tuple(int(r) for r in reps))


@op("transpose")
def transpose(x, perm):
    return np.transpose(x, tuple(int(p) for p in perm))


@op("concat")
def concat(values, axis, interleave=False):
    if interleave:
        raise NotImplementedError("concat with interleave=True")
    return np.concatenate(values, axis=int(axis))


@op("cast")
def cast(x, dtype):
    return x.astype(_CAST[str(dtype)])


@op("linear")
def linear(x, weight, bias=None):
    out = np.matmul(x.astype(np.float32), weight.astype(np.float32).T)
    return (out if bias is None else out + bias).astype(x.dtype)


@op("matmul")
def matmul(x, y, transpose_x=False, transpose_y=False):
    x = np.swapaxes(x, -1, -2) if transpose_x else x
    y = np.swapaxes(y, -1, -2) if transpose_y else y
    return np.matmul(x.astype(np.float32), y.astype(np.float32)).astype(x.dtype)


@op("layer_norm")
def layer_norm(x, axes, gamma=None, beta=None, epsilon=1e-5):
    axes = _axes(axes, x.ndim)
    x32 = x.astype(np.float32)
    mean = x32.mean(axis=axes, keepdims=True)
    out = (x32 - mean) / np.sqrt(((x32 - mean) ** 2).mean(axis=axes, keepdims=True) + epsilon)
    out = out if gamma is None else out * gamma
    return (out if beta is None else out + beta).astype(x.dtype)


@op("batch_norm")
def batch_norm(x, mean, variance, gamma=None, beta=None, epsilon=1e-5):
    shape = (1, -1) + (1,) * (x.ndim - 2)
    out = (x.astype(np.float32) - mean.reshape(shape)) / np.sqrt(variance.reshape(shape) + epsilon)
    out = out if gamma is None else out * gamma.reshape(shape)
    return (out if beta is None else out + beta.reshape(shape)).astype(x.dtype)


@op("pad")
def pad(x, pad, mode="constant", constant_val=0.0):
    pad = [int(p) for p in pad]
    widths = [(0, 0)] * (x.ndim - len(pad) // 2) + [(pad[i], pad[i + 1]) for i in range(0, len(pad), 2)]
    if str(mode) == "constant":
        return np.pad(x, widths, mode="constant", constant_values=float(constant_val))
    return np.pad(x, widths, mode={"reflect": "reflect", "replicate": "edge"}[str(mode)])


def _same_pads(size: int, kernel: int, stride: int, dilation: int, lower: bool) -> tuple[int, int]:
    total = max((math.ceil(size / stride) - 1) * stride + (kernel - 1) * dilation + 1 - size, 0)
    small, large = total // 2, total - total // 2
    return (large, small) if lower else (small, large)


@op("conv")
def conv(x, weight, strides=None, pad_type="valid", pad=None, dilations=None, groups=1, bias=None):
    """2-D convolution, NCHW, as a sum over kernel taps (matmul per tap; depthwise as a product)."""
    kh, kw = weight.shape[2:]
    sh, sw = (int(s) for s in (strides if strides is not None else (1, 1)))
    dh, dw = (int(d) for d in (dilations if dilations is not None else (1, 1)))
    top, bottom, left, right = _pads(x, (kh, kw), (sh, sw), pad_type, pad, (dh, dw))
    dtype = x.dtype
    x = _padded(x.astype(np.float32, copy=False), top, bottom, left, right)
    weight = weight.astype(np.float32, copy=False)
    groups = int(groups)
    n, c, h, w = x.shape
    ho, wo = (h - dh * (kh - 1) - 1) // sh + 1, (w - dw * (kw - 1) - 1) // sw + 1
    cout, cin_g = weight.shape[:2]
    depthwise = groups == c and cin_g == 1
    if depthwise and cout != c:
        x, c = np.repeat(x, cout // c, axis=1), cout
    out = np.zeros((n, cout, ho, wo), dtype=np.float32)
    for i in range(kh):
        for j in range(kw):
            tap = x[:, :, i * dh : i * dh + sh * (ho - 1) + 1 : sh, j * dw : j * dw + sw * (wo - 1) + 1 : sw]
            if depthwise:
                out += tap * weight[None, :, 0, i, j, None, None]
                continue
            for g in range(groups):
                cin, co = slice(g * cin_g, (g + 1) * cin_g), slice(g * cout // groups, (g + 1) * cout // groups)
                out[:, co] += np.tensordot(weight[co, :, i, j], tap[:, cin], axes=([1], [1])).transpose(1, 0, 2, 3)
    if bias is not None:
        out += bias.astype(np.float32)[None, :, None, None]
    return out.astype(dtype)


def _padded(x: np.ndarray, top: int, bottom: int, left: int, right: int) -> np.ndarray:
    """`x` (N, C, H, W) with zeros around its last two axes; `x` itself without padding (no copy)."""
    if not (top or bottom or left or right):
        return x
    return np.pad(x, ((0, 0), (0, 0), (top, bottom), (left, right)))


def _pads(x, kernel, strides, pad_type, pad, dilations=(1, 1)) -> tuple[int, int, int, int]:
    """(top, bottom, left, right) padding of a 2-D window op."""
    (kh, kw), (sh, sw), (dh, dw) = kernel, strides, dilations
    if str(pad_type) == "custom":
        top, bottom, left, right = (int(p) for p in pad)
        return top, bottom, left, right
    if str(pad_type) in ("same", "same_lower"):
        lower = str(pad_type) == "same_lower"
        return (*_same_pads(x.shape[2], kh, sh, dh, lower), *_same_pads(x.shape[3], kw, sw, dw, lower))
    return 0, 0, 0, 0


@op("avg_pool")
def avg_pool(x, kernel_sizes, strides=None, pad_type="valid", pad=None, exclude_padding_from_average=False,
             ceil_mode=False):
    """2-D average pooling, NCHW (the squeeze head's 2x2 pool)."""
    if bool(ceil_mode):
        raise NotImplementedError("avg_pool with ceil_mode=True")
    kh, kw = (int(k) for k in kernel_sizes)
    sh, sw = (int(s) for s in (strides if strides is not None else (1, 1)))
    top, bottom, left, right = _pads(x, (kh, kw), (sh, sw), pad_type, pad)
    dtype = x.dtype
    padded = np.pad(x.astype(np.float32), ((0, 0), (0, 0), (top, bottom), (left, right)))
    inside = np.pad(np.ones(x.shape[2:], np.float32), ((top, bottom), (left, right)))
    ho, wo = (padded.shape[2] - kh) // sh + 1, (padded.shape[3] - kw) // sw + 1
    total = np.zeros((*x.shape[:2], ho, wo), np.float32)
    count = np.zeros((ho, wo), np.float32)
    for i in range(kh):
        for j in range(kw):
            rows, cols = slice(i, i + sh * (ho - 1) + 1, sh), slice(j, j + sw * (wo - 1) + 1, sw)
            total += padded[:, :, rows, cols]
            count += inside[rows, cols]
    return (total / (count if bool(exclude_padding_from_average) else kh * kw)).astype(dtype)


def _along(param, axis, rank: int):
    param = np.asarray(param, dtype=np.float32)
    if param.ndim == 1 and param.size > 1:
        shape = [1] * rank
        shape[int(axis) % rank] = -1
        return param.reshape(shape)
    return param


@op("constexpr_affine_dequantize")
def constexpr_affine_dequantize(quantized_data, zero_point, scale, axis):
    rank = quantized_data.ndim
    return ((quantized_data.astype(np.float32) - _along(zero_point, axis, rank)) * _along(scale, axis, rank)
            ).astype(np.asarray(scale).dtype)


@op("constexpr_blockwise_shift_scale")
def constexpr_blockwise_shift_scale(data, scale, offset=None):
    """iOS18 dequantization: `scale` (and `offset`) hold one value per block of `data`."""
    data = data.astype(np.float32)
    for axis, (size, blocks) in enumerate(zip(data.shape, scale.shape, strict=True)):
        if blocks != size:
            scale = np.repeat(scale, size // blocks, axis)
            offset = None if offset is None else np.repeat(offset, size // blocks, axis)
    data = data if offset is None else data - offset.astype(np.float32)
    return (data * scale.astype(np.float32)).astype(scale.dtype)


@op("quantize")
def quantize(input, scale, output_dtype, zero_point=None, axis=None):
    info = np.iinfo(_CAST[str(output_dtype)])
    rank = input.ndim
    zero = 0 if zero_point is None else _along(zero_point, axis, rank)
    q = np.round(input.astype(np.float32) / _along(scale, axis, rank)) + zero
    return np.clip(q, info.min, info.max).astype(_CAST[str(output_dtype)])


@op("dequantize")
def dequantize(input, scale, zero_point=None, axis=None):
    rank = input.ndim
    zero = 0 if zero_point is None else _along(zero_point, axis, rank)
    return ((input.astype(np.float32) - zero) * _along(scale, axis, rank)).astype(np.asarray(scale).dtype)
