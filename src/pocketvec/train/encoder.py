"""The student encoder: timm backbone + embedding head, normalisation inside, L2-normalised output."""

from __future__ import annotations

import functools
from dataclasses import asdict, dataclass, field
from typing import Any

import timm
import torch
import torch.nn.functional as F
from torch import nn

from pocketvec.errors import ConfigError
from pocketvec.ranges import RANGES
from pocketvec.runtime.preprocess import PreprocessSpec, reject_unknown_keys

# "mlp": pooled features -> Linear-LN-BN-Linear-LN-BN (the seed design)
# "squeeze": feature map -> 1x1 conv squeeze -> 2x2 pool -> flatten -> Linear-LN-BN (keeps coarse layout)
# "none": pooled backbone features only (frozen baselines); embedding_dim must equal the backbone width
HEADS = ("mlp", "squeeze", "none")
SQUEEZE_CHANNELS = 64
LOCAL_REDUCTION = 16  # the local re-rank matches the backbone's stride-16 map (14 x 14 at 224 px)


@functools.cache
def _timm_models() -> frozenset[str]:
    """timm's model names, listed once (timm.list_models() takes milliseconds; configs are made often)."""
    return frozenset(timm.list_models())


def known_backbone(name: str) -> bool:
    """Whether timm has a model `name`; a name registered since the last listing is found too (listed again)."""
    if not isinstance(name, str):
        return False
    if name in _timm_models():
        return True
    _timm_models.cache_clear()
    return name in _timm_models()


@dataclass(frozen=True)
class EncoderConfig:
    backbone: str = "tf_efficientnet_lite0"
    embedding_dim: int = 256
    head: str = "mlp"
    dropout: float = 0.0
    preprocess: PreprocessSpec = field(default_factory=PreprocessSpec)

    def __post_init__(self) -> None:
        RANGES["encoder.embedding_dim"].check("embedding_dim", self.embedding_dim)
        if self.head not in HEADS:
            raise ConfigError(f"head must be one of {list(HEADS)}. Got {self.head!r}.")
        RANGES["encoder.dropout"].check("dropout", self.dropout)
        if self.dropout == 1.0:
            raise ConfigError("dropout must be < 1 (1 drops every feature). Got 1.0.")
        if not known_backbone(self.backbone):
            raise ConfigError(f"unknown timm backbone (see timm.list_models()). Got {self.backbone!r}.")

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["preprocess"] = self.preprocess.to_dict()
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> EncoderConfig:
        reject_unknown_keys(cls, data)
        data = dict(data)
        data["preprocess"] = PreprocessSpec.from_dict(data.get("preprocess", {}))
        return cls(**data)


class EmbeddingHead(nn.Module):
    """Linear -> LayerNorm -> BatchNorm1d -> Linear -> LayerNorm -> BatchNorm1d."""

    def __init__(self, in_features: int, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.layers = nn.Sequential(
            nn.Dropout(dropout),
            nn.Linear(in_features, dim),
            nn.LayerNorm(dim),
            nn.BatchNorm1d(dim),
            nn.Linear(dim, dim),
            nn.LayerNorm(dim),
            nn.BatchNorm1d(dim),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layers(x)


class SqueezeHead(nn.Module):
    """1x1 conv squeeze of the feature map, 2x2 average pool, flatten, Linear -> LayerNorm -> BatchNorm1d."""

    def __init__(self, in_channels: int, dim: int, dropout: float = 0.0) -> None:
        super().__init__()
        self.squeeze = nn.Sequential(
            nn.Conv2d(in_channels, SQUEEZE_CHANNELS, 1, bias=False), nn.BatchNorm2d(SQUEEZE_CHANNELS), nn.ReLU(),
        )
        self.pool = nn.AdaptiveAvgPool2d(2)
        self.project = nn.Sequential(
            nn.Dropout(dropout), nn.Linear(SQUEEZE_CHANNELS * 4, dim), nn.LayerNorm(dim), nn.BatchNorm1d(dim),
        )

    def forward(self, feature_map: torch.Tensor) -> torch.Tensor:
        return self.project(torch.flatten(self.pool(self.squeeze(feature_map)), 1))


class Encoder(nn.Module):
    """RGB NCHW 0-255 in, one L2-normalised embedding per image out."""

    def __init__(self, config: EncoderConfig) -> None:
        super().__init__()
        self.config = config
        self.backbone = timm.create_model(config.backbone, pretrained=False, num_classes=0)
        # timm models with a conv head after pooling (PP-LCNet, MobileNetV3) output head_hidden_size
        width = getattr(self.backbone, "head_hidden_size", None) or self.backbone.num_features
        if config.head == "mlp":
            self.head: nn.Module = EmbeddingHead(width, config.embedding_dim, config.dropout)
        elif config.head == "squeeze":
            self.head = SqueezeHead(self.backbone.num_features, config.embedding_dim, config.dropout)
        else:
            if config.embedding_dim != width:
                raise ConfigError(f"head 'none' needs embedding_dim == backbone width {width}. "
                                  f"Got {config.embedding_dim!r}.")
            self.head = nn.Identity()
        spec = config.preprocess
        self.register_buffer("pixel_mean", torch.tensor(spec.mean).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("pixel_std", torch.tensor(spec.std).view(1, 3, 1, 1) * 255.0)

    def features(self, pixels: torch.Tensor) -> torch.Tensor:
        """What the head consumes: pooled features, or the feature map for the squeeze head."""
        x = (pixels - self.pixel_mean) / self.pixel_std
        if self.config.head == "squeeze":
            return self.backbone.forward_features(x)
        return self.backbone(x)

    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.head(self.features(pixels)), dim=-1)

    def local_stage(self) -> int:
        """Index in timm's feature_info of the last backbone stage at 1/16 of the input's resolution."""
        stages = [i for i, info in enumerate(self.backbone.feature_info) if info["reduction"] == LOCAL_REDUCTION]
        if not stages:
            raise ConfigError(f"{self.config.backbone} has no stage at stride {LOCAL_REDUCTION}: no local re-rank")
        return stages[-1]

    def has_local_stage(self) -> bool:
        """Whether the backbone has a stride-16 stage (a local re-rank is possible)."""
        return any(info["reduction"] == LOCAL_REDUCTION for info in self.backbone.feature_info)

    def forward_with_locals(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """The embedding (as forward) and the stride-16 map as (N, locations, channels), each location
        L2-normalised: what the local re-rank matches (pocketvec.runtime.local_rerank)."""
        x = (pixels - self.pixel_mean) / self.pixel_std
        final, (stage,) = self.backbone.forward_intermediates(x, indices=[self.local_stage()])
        features = final if self.config.head == "squeeze" else self.backbone.forward_head(final)
        embedding = F.normalize(self.head(features), dim=-1)
        return embedding, _locations(stage)

    def local_maps(self, pixels: torch.Tensor) -> torch.Tensor:
        """The stride-16 map alone, as forward_with_locals returns it (the later stages and the head do not run)."""
        x = (pixels - self.pixel_mean) / self.pixel_std
        (stage,) = self.backbone.forward_intermediates(x, indices=[self.local_stage()], intermediates_only=True)
        return _locations(stage)


def _locations(stage: torch.Tensor) -> torch.Tensor:
    """(N, C, H, W) -> (N, H*W, C), each location L2-normalised."""
    return F.normalize(stage, dim=1).flatten(2).transpose(1, 2)


class WithLocals(nn.Module):
    """An encoder whose forward returns (embedding, local): the graph exported for a local re-rank."""

    def __init__(self, encoder: Encoder) -> None:
        super().__init__()
        self.encoder = encoder

    def forward(self, pixels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.encoder.forward_with_locals(pixels)


def build_encoder(config: EncoderConfig) -> Encoder:
    return Encoder(config)
