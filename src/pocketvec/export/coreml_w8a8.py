"""W8A8 for Core ML through coremltools' torch-side quantizer, activations calibrated on simulated phone photos.

The graph is first made static for the input size (pocketvec.export.static_graph): "same" padding frozen,
batch norms folded into their convolutions, so conv -> activation is quantized as one step (otherwise the
quantizer rounds each batch norm's per-channel scales onto one 8-bit grid: mean cosine 0.83 on the base).
coremltools' LinearQuantizer inserts fake-quantize modules (FX graph mode) with min/max observers (the
moving-average default clips the photos' rare peaks), enabled with one `step()`, fed the calibration
photos in eval mode and frozen by `finalize()`. The head and the first convolutions keep float activations
when the check asks for it (pocketvec.export.w8a8); their weights are made int8 after conversion, as the
`int8` export does. The check runs the quantized torch graph, which the ML program computes, but for that
weight rounding (int8 weights for the whole network cost mean cosine 0.0002 on both shipped models).
"""

from __future__ import annotations

import copy
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import torch
from torch import nn

from pocketvec.export.onnx_quantize import calibration_pixels
from pocketvec.export.static_graph import fold_batch_norms, freeze_same_padding, run_order
from pocketvec.export.w8a8 import Rung, quantize_on_ladder
from pocketvec.runtime.preprocess import PreprocessSpec


def embeddings(model: nn.Module, pixels: torch.Tensor, batch: int = 16) -> np.ndarray:
    """The first output (the embedding) of `model` for `pixels`."""
    with torch.no_grad():
        outs = [model(pixels[i:i + batch]) for i in range(0, len(pixels), batch)]
    return torch.cat([out[0] if isinstance(out, tuple) else out for out in outs]).numpy()


def calibrated(model: nn.Module, config, calibration: torch.Tensor) -> nn.Module:
    """`model` quantized by coremltools' LinearQuantizer with `config` (a LinearQuantizerConfig whose
    milestones enable observers and fake quantization at once): observers fed `calibration`, then frozen."""
    from coremltools.optimize.torch.quantization import LinearQuantizer

    quantizer = LinearQuantizer(copy.deepcopy(model), config)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        prepared = quantizer.prepare(example_inputs=(calibration[:1],), inplace=False)
        quantizer.step()
        prepared.eval()
        with torch.no_grad(), weights_quantized_once(prepared):
            for i in range(len(calibration)):
                prepared(calibration[i : i + 1])
        return quantizer.finalize(prepared).eval()


class _Fixed(nn.Module):
    """Stands in for a weight's fake-quantize module: its output, computed once."""

    def __init__(self, value: torch.Tensor) -> None:
        super().__init__()
        self.value = value

    def forward(self, _weight: torch.Tensor) -> torch.Tensor:
        return self.value


@contextmanager
def weights_quantized_once(prepared: nn.Module) -> Iterator[None]:
    """Within: each weight's fake-quantize output (its min/max observer, then the rounding) computed once
    instead of on every calibration image. The weights do not change while the photos pass, so the observer's
    min/max, the scales and the rounded weights are those the per-image passes give; the modules are put back
    for `finalize`."""
    swapped = []
    for module in prepared.modules():
        fake_quant = module._modules.get("weight_fake_quant")
        if fake_quant is not None:
            module.weight_fake_quant = _Fixed(fake_quant(module.weight))
            swapped.append((module, fake_quant))
    try:
        yield
    finally:
        for module, fake_quant in swapped:
            module.weight_fake_quant = fake_quant


def quantized_graph(static: nn.Module, calibration: torch.Tensor, float_modules: list[str]) -> nn.Module:
    """`static` with int8 weights and uint8 activations (min/max ranges over `calibration`), the named
    modules left float."""
    from coremltools.optimize.torch.quantization import LinearQuantizerConfig, ModuleLinearQuantizerConfig

    config = LinearQuantizerConfig(
        global_config=ModuleLinearQuantizerConfig(quantization_scheme="affine", milestones=[0, 0, 10**9, 0],
                                                  activation_observer="min_max", weight_observer="min_max"),
        module_name_configs=dict.fromkeys(float_modules))
    return calibrated(static, config, calibration)


def float_modules(model: nn.Module, size: int, rung: Rung) -> list[str]:
    """The leaf modules the rung keeps float, as a forward pass runs them."""
    order = run_order(model, size)
    return rung.float_parts(order, [i for i, name in enumerate(order)
                                    if isinstance(model.get_submodule(name), nn.Conv2d)])


def w8a8_graph(model: nn.Module, run_dir: str | Path, spec: PreprocessSpec, calibration_dir: str | Path | None):
    """A traced graph with int8 weights and int8 activations, ready for ct.convert, and its check."""
    sets = calibration_pixels(run_dir, spec, calibration_dir)
    calibration, check = torch.from_numpy(sets.calibration), torch.from_numpy(sets.check)
    size = spec.input_size
    static = fold_batch_norms(freeze_same_padding(copy.deepcopy(model).eval(), size), size)
    final, result = quantize_on_ladder(
        lambda rung: quantized_graph(static, calibration, float_modules(static, size, rung)),
        lambda graph: embeddings(graph, check), embeddings(model, check), len(sets.check_photos))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return torch.jit.trace(final, calibration[:1], check_trace=False), result
