"""The teacher interface and the weight files' digest: below pocketvec.train.teachers (the loaders) and
pocketvec.train.teacher_formats (transformers and open_clip folders), which both build on it."""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn


class Teacher(nn.Module):
    """Wraps an image model: resizes to its input size, normalises, embeds; frozen and in eval mode."""

    def __init__(self, teacher_id: str, input_size: int, mean: tuple[float, ...], std: tuple[float, ...]) -> None:
        super().__init__()
        self.teacher_id = teacher_id
        self.input_size = input_size
        self.register_buffer("pixel_mean", torch.tensor(mean, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)
        self.register_buffer("pixel_std", torch.tensor(std, dtype=torch.float32).view(1, 3, 1, 1) * 255.0)

    def freeze(self) -> Teacher:
        for p in self.parameters():
            p.requires_grad_(False)
        return self.eval()

    def train(self, mode: bool = True) -> Teacher:  # a teacher never leaves eval mode (BN, dropout)
        return super().train(False)

    def normalise(self, pixels: torch.Tensor) -> torch.Tensor:
        if pixels.shape[-1] != self.input_size or pixels.shape[-2] != self.input_size:
            pixels = F.interpolate(pixels, size=(self.input_size, self.input_size), mode="bilinear",
                                   align_corners=False, antialias=True)
        return (pixels - self.pixel_mean) / self.pixel_std

    def embed(self, x: torch.Tensor) -> torch.Tensor:  # x: normalised input
        raise NotImplementedError

    def classify(self, x: torch.Tensor) -> torch.Tensor | None:  # ImageNet logits where the model has them
        return None

    @torch.no_grad()
    def forward(self, pixels: torch.Tensor) -> torch.Tensor:
        return F.normalize(self.embed(self.normalise(pixels)).float(), dim=-1)

    @torch.no_grad()
    def outputs(self, pixels: torch.Tensor) -> dict[str, torch.Tensor]:
        """Embedding and, where available, class logits of one batch (what the cache stores)."""
        x = self.normalise(pixels)
        out = {"embedding": F.normalize(self.embed(x).float(), dim=-1)}
        logits = self.classify(x)
        if logits is not None:
            out["logits"] = logits.float()
        return out



def file_digest(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()[:12]
