"""W8A8 for Core ML through coremltools' torch-side quantizer, activations calibrated on real images.

coremltools' LinearQuantizer inserts fake-quantize modules (FX graph mode); observers are enabled
with one `step()`, fed the calibration images in eval mode (batch norms frozen to their running
statistics first) and frozen by `finalize()`. timm's dynamic TF "same" padding is first frozen to static padding for the
fixed input size, so the quantized graph traces without shape arithmetic.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import torch
from torch import nn

from pocketvec.export.onnx_quantize import calibration_pixels
from pocketvec.runtime.preprocess import PreprocessSpec


def freeze_same_padding(model: nn.Module, size: int) -> nn.Module:
    """Replace timm Conv2dSame layers by ZeroPad2d + Conv2d with the padding their input size needs."""
    from timm.layers import Conv2dSame
    from timm.layers.padding import pad_same_arg

    shapes: dict[str, tuple[int, int]] = {}
    hooks = [module.register_forward_pre_hook(lambda _m, args, name=name: shapes.__setitem__(name, args[0].shape[-2:]))
             for name, module in model.named_modules() if isinstance(module, Conv2dSame)]
    with torch.no_grad():
        model(torch.zeros(1, 3, size, size))
    for hook in hooks:
        hook.remove()
    for name, shape in shapes.items():
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        same = getattr(parent, child)
        conv = nn.Conv2d(same.in_channels, same.out_channels, same.kernel_size, same.stride, 0, same.dilation,
                         same.groups, same.bias is not None)
        conv.load_state_dict(same.state_dict())
        pad = pad_same_arg(list(shape), list(same.kernel_size), list(same.stride), list(same.dilation))
        setattr(parent, child, nn.Sequential(nn.ZeroPad2d(pad), conv))
    return model


def w8a8_graph(model: nn.Module, run_dir: str | Path, spec: PreprocessSpec, calibration_dir: str | Path | None):
    """A traced graph with int8 weights and int8 activations, ready for ct.convert."""
    from coremltools.optimize.torch.quantization import (
        LinearQuantizer,
        LinearQuantizerConfig,
        ModuleLinearQuantizerConfig,
    )
    from timm.utils.model import freeze_batch_norm_2d

    pixels = torch.from_numpy(calibration_pixels(run_dir, spec, calibration_dir))
    # FX traces through timm's BatchNormAct2d and would bake in training-mode batch statistics:
    # frozen batch norms always use the running statistics.
    model = freeze_same_padding(freeze_batch_norm_2d(model.eval()), spec.input_size)
    config = LinearQuantizerConfig(global_config=ModuleLinearQuantizerConfig(
        quantization_scheme="affine", milestones=[0, 0, 10**9, 0]))
    quantizer = LinearQuantizer(model, config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = quantizer.prepare(example_inputs=(pixels[:1],), inplace=False)
        quantizer.step()
        prepared.eval()
        with torch.no_grad():
            for i in range(len(pixels)):
                prepared(pixels[i : i + 1])
        final = quantizer.finalize(prepared).eval()
        return torch.jit.trace(final, pixels[:1], check_trace=False)
