"""DoRA / LoRA adapters (peft) on chosen Linear and non-depthwise Conv2d layers, and merging them away.

peft refuses DoRA on depthwise convolutions, so targets are filtered to Linear and groups == 1 Conv2d.
`merge_adapters` folds every adapter into its base layer and puts the plain layer back, so the encoder
is an ordinary `Encoder` again (what checkpoints store and exporters see).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass

import torch
from torch import nn

from pocketvec.checks import check_number
from pocketvec.errors import ConfigError
from pocketvec.runtime.preprocess import reject_unknown_keys

# the embedding head, the backbone's final 1x1 conv, and the pointwise convs of the last block stage
DEFAULT_TARGETS = ("head.*", "backbone.conv_head", "backbone.blocks.6.*", "backbone.blocks.5.*")
ADAPTER_KINDS = ("dora", "lora", "none")


@dataclass(frozen=True)
class AdapterConfig:
    kind: str = "dora"
    rank: int = 8
    alpha: float = 16.0
    dropout: float = 0.0
    targets: tuple[str, ...] = DEFAULT_TARGETS

    def __post_init__(self) -> None:
        if self.kind not in ADAPTER_KINDS:
            raise ConfigError(f"adapter kind must be one of {list(ADAPTER_KINDS)}. Got {self.kind!r}.")
        check_number("adapter rank", self.rank, 1, 4096, integer=True)
        check_number("adapter alpha", self.alpha, 0.0, 1e6)
        check_number("adapter dropout", self.dropout, 0.0, 1.0)
        if isinstance(self.targets, str) or not isinstance(self.targets, (list, tuple)) or not all(
                isinstance(t, str) and t for t in self.targets):
            raise ConfigError(f"adapter targets must be a list of module name patterns. Got {self.targets!r}.")
        object.__setattr__(self, "targets", tuple(self.targets))

    @classmethod
    def from_dict(cls, data: dict) -> AdapterConfig:
        reject_unknown_keys(cls, data)
        return cls(**data)


def adaptable(module: nn.Module) -> bool:
    return isinstance(module, nn.Linear) or (isinstance(module, nn.Conv2d) and module.groups == 1)


def adapter_target_names(model: nn.Module, patterns: tuple[str, ...]) -> list[str]:
    """Full names of the Linear / non-depthwise Conv2d modules matching any glob pattern."""
    names = [name for name, module in model.named_modules()
             if adaptable(module) and any(fnmatch.fnmatchcase(name, p) for p in patterns)]
    if not names:
        raise ConfigError(f"adapter targets {list(patterns)} match no Linear or non-depthwise Conv2d layer")
    return names


DEAD_CHANNEL_WEIGHT = 1e-6


def _revive_dead_channels(layer: nn.Module) -> None:
    """DoRA divides by each output channel's weight norm: an all-zero channel (a dead channel, or one
    flushed to zero by fp16 storage) would give 0/0 = NaN. Such channels get a negligible constant weight."""
    with torch.no_grad():
        dead = layer.weight.flatten(1).norm(dim=1) == 0
        if dead.any():
            layer.weight[dead] = DEAD_CHANNEL_WEIGHT


def add_adapters(model: nn.Module, config: AdapterConfig) -> list[str]:
    """Inject adapters in place; only adapter weights stay trainable. Returns the adapted layer names."""
    from peft import LoraConfig, inject_adapter_in_model

    names = adapter_target_names(model, config.targets)
    if config.kind == "dora":
        for name in names:
            _revive_dead_channels(model.get_submodule(name))
    peft_config = LoraConfig(r=config.rank, lora_alpha=config.alpha, lora_dropout=config.dropout,
                             target_modules=names, use_dora=config.kind == "dora", init_lora_weights=True)
    inject_adapter_in_model(peft_config, model)
    for name, param in model.named_parameters():
        param.requires_grad_("lora_" in name)
    return names


def has_adapters(model: nn.Module) -> bool:
    return any("lora_" in name for name, _ in model.named_parameters())


def merge_adapters(model: nn.Module) -> nn.Module:
    """Fold all adapters into their base layers and restore plain modules, in place."""
    if not any("lora_" in name for name, _ in model.named_parameters()):
        return model  # nothing to merge (and no need to import peft)
    from peft.tuners.lora import LoraLayer

    for name, module in list(model.named_modules()):
        if not isinstance(module, LoraLayer):
            continue
        module.merge(safe_merge=True)
        parent_name, _, child = name.rpartition(".")
        parent = model.get_submodule(parent_name) if parent_name else model
        setattr(parent, child, module.get_base_layer())
    for param in model.parameters():
        param.requires_grad_(True)
    return model
