"""DoRA / LoRA adapters: only adapters train, depthwise convs are skipped, merged == adapted."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from pocketvec.errors import ConfigError
from pocketvec.runtime.preprocess import PreprocessSpec
from pocketvec.train.adapters import AdapterConfig, add_adapters, has_adapters, merge_adapters
from pocketvec.train.encoder import Encoder, EncoderConfig


def _encoder() -> Encoder:
    torch.manual_seed(0)
    return Encoder(EncoderConfig(backbone="lcnet_050", embedding_dim=32, preprocess=PreprocessSpec(input_size=64)))


@pytest.mark.parametrize("kind", ["dora", "lora"])
def test_merged_equals_adapted(kind: str) -> None:
    model = _encoder()
    names = add_adapters(model, AdapterConfig(kind=kind, rank=4, targets=("head.*", "backbone.conv_head",
                                                                           "backbone.blocks.5.*")))
    assert all(isinstance(model.get_submodule(n).get_base_layer(), (nn.Linear, nn.Conv2d)) for n in names)
    assert not any(model.get_submodule(n).get_base_layer().groups > 1 for n in names
                   if isinstance(model.get_submodule(n).get_base_layer(), nn.Conv2d))
    trainable = [n for n, p in model.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    with torch.no_grad():  # move the adapters away from their identity init
        for n, p in model.named_parameters():
            if "lora_" in n:
                p.add_(torch.randn_like(p) * 0.05)
    model.eval()
    pixels = torch.rand(3, 3, 64, 64) * 255
    with torch.no_grad():
        adapted = model(pixels)
        merge_adapters(model)
        merged = model(pixels)
    assert not has_adapters(model)
    assert set(model.state_dict()) == set(_encoder().state_dict())  # a plain Encoder again
    assert (merged - adapted).abs().max() <= 1e-5
    assert (adapted - _encoder().eval()(pixels)).abs().max() > 1e-3  # the adapters did change the output


def test_targets_matching_nothing_are_refused() -> None:
    with pytest.raises(ConfigError, match="match no Linear"):
        add_adapters(_encoder(), AdapterConfig(targets=("nothing.*",)))
    with pytest.raises(ConfigError, match="Got 'ia3'"):
        AdapterConfig(kind="ia3")


def test_dora_on_a_layer_with_a_dead_channel_stays_finite() -> None:
    model = _encoder()
    with torch.no_grad():
        model.backbone.conv_head.weight[3] = 0.0  # e.g. a tiny ImageNet weight flushed to zero by fp16
    add_adapters(model, AdapterConfig(kind="dora", rank=4, targets=("backbone.conv_head",)))
    out = model.train()(torch.rand(4, 3, 64, 64) * 255)
    out.sum().backward()
    assert torch.isfinite(out).all()
    assert all(torch.isfinite(p.grad).all() for p in model.parameters() if p.grad is not None)
