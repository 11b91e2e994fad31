"""Margin heads: they turn cosine logits into the scaled, margin-penalised logits of a softmax loss.

`cos` is (batch, classes) in [-1, 1]; `target` holds each row's column in `cos`, or -1 where the row's
class is not among these columns (another PartialFC shard). Heads: ArcFace cos(θ + m),
CosFace cos θ − m, SphereFace ψ(θ) = (−1)^k cos(m·θ) − 2k for θ in [kπ/m, (k+1)π/m] (its paper's
monotonic extension of cos(m·θ), for any real m > 0), and AdaCos (no margin, adaptive scale).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import nn

from pocketvec.checks import check_number
from pocketvec.errors import ConfigError
from pocketvec.runtime.preprocess import reject_unknown_keys
from pocketvec.train.distributed import all_reduce_sum

MARGIN_HEADS = ("arcface", "cosface", "sphereface", "adacos")
DEFAULT_MARGINS = {"arcface": 0.5, "cosface": 0.35, "sphereface": 1.35, "adacos": 0.0}


@dataclass(frozen=True)
class MarginConfig:
    kind: str = "arcface"
    scale: float = 32.0
    margin: float | None = None  # None: the head's usual value (DEFAULT_MARGINS)
    label_smoothing: float = 0.0

    def __post_init__(self) -> None:
        if self.kind not in MARGIN_HEADS:
            raise ConfigError(f"margin head must be one of {list(MARGIN_HEADS)}. Got {self.kind!r}.")
        check_number("margin scale", self.scale, 0.0, 1e4)
        if self.scale <= 0:
            raise ConfigError(f"margin scale must be > 0. Got {self.scale!r}.")
        if self.margin is not None:
            check_number("margin margin", self.margin, -10.0, 10.0)
            if self.kind == "sphereface" and self.margin <= 0:
                raise ConfigError(f"sphereface margin (the angle multiplier m) must be > 0. Got {self.margin!r}.")
        check_number("label_smoothing", self.label_smoothing, 0.0, 1.0)
        if not 0.0 <= self.label_smoothing < 1.0:
            raise ConfigError(f"label_smoothing must be in [0, 1). Got {self.label_smoothing!r}.")

    @classmethod
    def from_dict(cls, data: dict) -> MarginConfig:
        reject_unknown_keys(cls, data)
        return cls(**data)


def _target_column(cos: torch.Tensor, target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Row indices that own their target here, and those target cosines."""
    rows = torch.nonzero(target >= 0, as_tuple=True)[0]
    return rows, cos[rows, target[rows]]


def sphereface_psi(theta: torch.Tensor, margin: float) -> torch.Tensor:
    """SphereFace's ψ(θ) = (−1)^k cos(mθ) − 2k, k = ⌊mθ/π⌋: equals cos(mθ) up to θ = π/m, then keeps
    decreasing (continuous, monotonic over [0, π]) where cos(mθ) would turn back up."""
    k = torch.floor(theta.detach() * (margin / math.pi))
    sign = 1.0 - 2.0 * torch.remainder(k, 2.0)
    return sign * torch.cos(margin * theta) - 2.0 * k


class MarginHead(nn.Module):
    def __init__(self, config: MarginConfig) -> None:
        super().__init__()
        self.config = config
        self.kind = config.kind
        self.margin = DEFAULT_MARGINS[config.kind] if config.margin is None else float(config.margin)
        # AdaCos keeps its adaptive scale as state (saved and resumed with the model)
        self.register_buffer("adaptive_scale", torch.tensor(-1.0))

    def _penalised(self, target_cos: torch.Tensor) -> torch.Tensor:
        theta = torch.acos(target_cos.clamp(-1.0 + 1e-7, 1.0 - 1e-7))
        if self.kind == "arcface":
            # beyond θ + m > π cos(θ + m) stops being monotonic: fall back to the CosFace-like linear penalty
            return torch.where(theta + self.margin < math.pi, torch.cos(theta + self.margin),
                               target_cos - self.margin * math.sin(self.margin))
        if self.kind == "cosface":
            return target_cos - self.margin
        return sphereface_psi(theta, self.margin)

    @torch.no_grad()
    def _update_adacos_scale(self, cos: torch.Tensor, target: torch.Tensor, num_classes: int) -> None:
        if self.adaptive_scale < 0:
            self.adaptive_scale.fill_(math.sqrt(2.0) * math.log(max(num_classes - 1, 2)))
        s = float(self.adaptive_scale)
        exp_all = torch.exp(s * cos).sum(dim=1)
        target_cos = torch.zeros(cos.shape[0], dtype=cos.dtype, device=cos.device)
        rows, values = _target_column(cos, target)
        target_cos[rows] = values
        exp_all, target_cos = all_reduce_sum(exp_all), all_reduce_sum(target_cos)
        b_avg = (exp_all - torch.exp(s * target_cos)).mean()
        theta_med = torch.acos(target_cos.clamp(-1 + 1e-7, 1 - 1e-7)).median()
        scale = torch.log(b_avg.clamp_min(1e-12)) / torch.cos(theta_med.clamp(max=math.pi / 4))
        self.adaptive_scale.fill_(float(scale))

    def forward(self, cos: torch.Tensor, target: torch.Tensor, num_classes: int) -> torch.Tensor:
        """Scaled logits; `num_classes` is the total column count over all shards (for AdaCos)."""
        if self.kind == "adacos":
            if self.training:
                self._update_adacos_scale(cos.detach(), target, num_classes)
            return cos * self.adaptive_scale
        rows, target_cos = _target_column(cos, target)
        logits = cos.clone()
        logits[rows, target[rows]] = self._penalised(target_cos)
        return logits * self.config.scale


def sharded_cross_entropy(logits: torch.Tensor, target: torch.Tensor, num_classes: int,
                          label_smoothing: float = 0.0) -> torch.Tensor:
    """Softmax cross-entropy when the columns are split across ranks (one rank: plain cross-entropy)."""
    from pocketvec.train.distributed import all_reduce_max

    local_max = logits.max(dim=1).values if logits.shape[1] else logits.new_full(logits.shape[:1], -math.inf)
    row_max = all_reduce_max(local_max)  # a shard may keep no sampled column
    shifted = logits - row_max[:, None]
    log_z = torch.log(all_reduce_sum(torch.exp(shifted).sum(dim=1)))
    rows, target_logit = _target_column(shifted, target)
    target_sum = torch.zeros(logits.shape[0], dtype=logits.dtype, device=logits.device).index_put((rows,), target_logit)
    nll = log_z - all_reduce_sum(target_sum)
    if label_smoothing > 0:
        smooth = log_z - all_reduce_sum(shifted.sum(dim=1)) / num_classes
        nll = (1.0 - label_smoothing) * nll + label_smoothing * smooth
    return nll.mean()
