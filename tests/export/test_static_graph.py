"""Graph rewrites for a fixed input size (static "same" padding, folded batch norms): the same model, no
run-time shape arithmetic left for a quantizer to round."""

from __future__ import annotations

import copy

import onnx
import torch
from timm.layers import Conv2dSame
from torch import nn

from pocketvec.export.coreml_w8a8 import float_modules
from pocketvec.export.onnx_export import export_onnx
from pocketvec.export.static_graph import fold_batch_norms, freeze_same_padding
from pocketvec.export.w8a8 import Rung
from pocketvec.train.checkpoint import load_run


def test_static_padding_and_folded_batch_norms_compute_the_same(lite0_run):
    model = load_run(lite0_run)
    assert any(isinstance(m, Conv2dSame) for m in model.modules())  # the TF-ported backbone pads at run time
    pixels = torch.rand(2, 3, 224, 224, generator=torch.Generator().manual_seed(0)) * 255
    with torch.no_grad():
        expected = model(pixels)
        static = fold_batch_norms(freeze_same_padding(copy.deepcopy(model), 224), 224)
        got = static(pixels)
    assert not any(isinstance(m, (Conv2dSame, nn.BatchNorm2d)) for m in static.modules())
    assert torch.allclose(got, expected, atol=1e-5), (got - expected).abs().max()


def test_the_onnx_export_pads_by_amounts_that_do_not_depend_on_the_image(lite0_run, tmp_path):
    """Before: Shape(image) -> float Sub/Mul/Add -> Pad, which onnxruntime's static quantizer rounded."""
    proto = onnx.load(str(export_onnx(lite0_run, tmp_path / "m.onnx", local_rerank=False)))
    producer = {out: node for node in proto.graph.node for out in node.output}

    def depends_on_image(name: str) -> bool:
        node = producer.get(name)
        return name == proto.graph.input[0].name or (node is not None and any(map(depends_on_image, node.input)))

    pads = [node for node in proto.graph.node if node.op_type == "Pad"]
    assert pads and not any(depends_on_image(node.input[1]) for node in pads)


def test_float_modules_are_the_named_convolutions_and_the_head(lite0_run):
    static = fold_batch_norms(freeze_same_padding(load_run(lite0_run), 224), 224)
    # the stem's frozen padding, the stem, its activation (its batch norm folded away), the first depthwise conv
    leading = ["backbone.conv_stem.0", "backbone.conv_stem.1", "backbone.bn1", "backbone.blocks.0.0.conv_dw"]
    assert float_modules(static, 224, Rung(2, False)) == leading
    assert float_modules(static, 224, Rung(0, False)) == []
    # after the last convolution (conv_head, its batch norm folded): its activation, the pooling, the head
    head = float_modules(static, 224, Rung(0, True))
    assert head[0] == "backbone.bn2" and "backbone.conv_head" not in head
    assert [name for name in head if name.startswith("head.")] == [
        name for name, module in static.head.named_modules(prefix="head") if not any(module.children())]
    assert float_modules(static, 224, Rung(2, True)) == leading + head
