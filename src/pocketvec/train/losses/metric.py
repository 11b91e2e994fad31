"""Alternatives to the margin softmax: batch-hard triplet + pair loss, and center loss (cosine distance)."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def cosine_distance_matrix(embeddings: torch.Tensor) -> torch.Tensor:
    unit = F.normalize(embeddings, dim=-1)
    return 1.0 - unit @ unit.T


class TripletPairLoss(nn.Module):
    """Batch-hard triplet loss plus a weighted pair (contrastive) loss on cosine distance.

    triplet: mean over anchors of relu(d(a, hardest positive) − d(a, hardest negative) + margin);
    pair: mean d over positive pairs + mean relu(negative_margin − d) over negative pairs.
    Anchors without a positive or a negative in the batch are skipped.
    """

    def __init__(self, margin: float = 0.2, pair_weight: float = 0.5, negative_margin: float = 0.5) -> None:
        super().__init__()
        self.margin, self.pair_weight, self.negative_margin = margin, pair_weight, negative_margin

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        dist = cosine_distance_matrix(embeddings)
        same = labels[:, None] == labels[None, :]
        eye = torch.eye(len(labels), dtype=torch.bool)
        positive, negative = same & ~eye, ~same
        valid = positive.any(1) & negative.any(1)
        if not valid.any():
            return embeddings.sum() * 0.0
        hardest_pos = dist.masked_fill(~positive, float("-inf")).max(1).values
        hardest_neg = dist.masked_fill(~negative, float("inf")).min(1).values
        triplet = F.relu(hardest_pos - hardest_neg + self.margin)[valid].mean()
        pair = dist[positive].mean() + F.relu(self.negative_margin - dist[negative]).mean()
        return triplet + self.pair_weight * pair


class CenterLoss(nn.Module):
    """Half the mean squared distance between each unit embedding and its class centre."""

    def __init__(self, num_classes: int, embedding_dim: int) -> None:
        super().__init__()
        self.centers = nn.Parameter(F.normalize(torch.randn(num_classes, embedding_dim), dim=-1))

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        diff = F.normalize(embeddings, dim=-1) - self.centers[labels]
        return 0.5 * diff.pow(2).sum(dim=1).mean()
