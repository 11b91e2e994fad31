"""The int8 weight grid shared by export and training: symmetric per-output-channel int8 (-127..127).

The ONNX and Core ML `int8` exports store every Conv/Linear weight with more than INT8_WEIGHT_THRESHOLD
values on this grid. A training run can round its final weights onto the same grid
(`round_to_int8_grid`), so that its PyTorch model and its int8 exports compute from identical weights.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from torch import nn

# int8 keeps a weight float unless it has more than this many values (coremltools' default
# weight_threshold): on Lite0 these are the stem and the first depthwise/pointwise convs, the layers
# most sensitive to int8 (measured: mean cosine 0.989 -> 0.997 against fp32) for under 1 % of the weights.
INT8_WEIGHT_THRESHOLD = 2048


def quantize_per_channel(weight: np.ndarray, axis: int) -> tuple[np.ndarray, np.ndarray]:
    """Symmetric int8 (-127..127) with one scale per slice along `axis`: (int8 values, float32 scales)."""
    reduce = tuple(i for i in range(weight.ndim) if i != axis)
    scale = np.abs(weight).max(axis=reduce) / 127.0
    scale = np.where(scale > 0, scale, 1.0).astype(np.float32)
    shape = [1] * weight.ndim
    shape[axis] = -1
    return np.clip(np.rint(weight / scale.reshape(shape)), -127, 127).astype(np.int8), scale


def round_to_int8_grid(model: nn.Module) -> int:
    """Round in place every Conv/Linear weight the int8 export quantizes onto its int8 grid (output
    channels are axis 0 in PyTorch). Returns how many weight tensors were rounded."""
    import torch
    from torch import nn

    rounded = 0
    with torch.no_grad():
        for module in model.modules():
            weight = getattr(module, "weight", None)
            if not isinstance(module, (nn.Conv1d, nn.Conv2d, nn.Linear)) or weight is None:
                continue
            if weight.dtype != torch.float32 or weight.numel() <= INT8_WEIGHT_THRESHOLD:
                continue
            values, scale = quantize_per_channel(weight.detach().cpu().numpy(), 0)
            grid = values.astype(np.float32) * scale.reshape((-1,) + (1,) * (weight.ndim - 1))
            weight.copy_(torch.from_numpy(grid).to(weight.device))
            rounded += 1
    return rounded
