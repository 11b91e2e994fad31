"""PartialFC: class centres for up to millions of (pseudo-)classes, sharded across ranks, sampled per step.

Like insightface's partial_fc_v2, but it runs anywhere: rank 0 of 1 with no process group on a CPU, or
sharded under torchrun (gloo / nccl) when a process group is initialised. Each rank owns a contiguous
slice of the centres; the embeddings of the global batch are gathered; the batch's positive centres
plus a random fraction of the others are kept; the softmax is normalised across ranks.
With sample_rate 1.0 and one rank this is exactly the full margin softmax.

The sample is drawn over all classes, not per shard (insightface draws per shard): every rank draws
the same scores (the loop seeds every step identically on all ranks) and keeps its slice of one global
pick, so a run samples the same centres whatever the world size. Memory scales with the classes and
the kept columns only: the centres (C × D), the per-step scores (C floats) and the logits
(batch × kept); nothing is batch × C unless the rate is 1.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pocketvec.errors import ConfigError
from pocketvec.train.distributed import all_gather_grad, all_gather_nograd, rank_and_world
from pocketvec.train.losses.margins import MarginConfig, MarginHead, sharded_cross_entropy


def shard_range(num_classes: int, rank: int, world_size: int) -> tuple[int, int]:
    """[start, stop) of the classes owned by `rank`: contiguous, sizes differ by at most one."""
    base, extra = divmod(num_classes, world_size)
    start = rank * base + min(rank, extra)
    return start, start + base + (1 if rank < extra else 0)


class PartialFC(nn.Module):
    def __init__(self, embedding_dim: int, num_classes: int, margin: MarginConfig | None = None,
                 sample_rate: float = 1.0, rank: int | None = None, world_size: int | None = None) -> None:
        super().__init__()
        if not 0.0 < sample_rate <= 1.0:
            raise ConfigError(f"sample_rate must be in (0, 1]. Got {sample_rate!r}.")
        if num_classes < 2:
            raise ConfigError(f"PartialFC needs at least 2 classes. Got {num_classes!r}.")
        default_rank, default_world = rank_and_world()
        self.rank = default_rank if rank is None else rank
        self.world_size = default_world if world_size is None else world_size
        self.num_classes = num_classes
        self.sample_rate = sample_rate
        self.class_start, class_stop = shard_range(num_classes, self.rank, self.world_size)
        self.num_local = class_stop - self.class_start
        self.margin = MarginHead(margin or MarginConfig())
        self.weight = nn.Parameter(torch.normal(0.0, 0.01, (self.num_local, embedding_dim)))

    def num_sampled(self, labels: torch.Tensor) -> int:
        """Columns kept over all ranks: the rate's share of the classes, never fewer than the positives."""
        if self.sample_rate >= 1.0:
            return self.num_classes
        return min(self.num_classes, max(int(self.sample_rate * self.num_classes), int(torch.unique(labels).numel())))

    def sample(self, labels: torch.Tensor, num_sample: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """This rank's kept centres (local indices, sorted) and each row's target column among them (-1
        where the row's class lives on another rank). `labels` are the global batch's class ids."""
        local = labels - self.class_start
        local_target = torch.where((local >= 0) & (local < self.num_local), local, torch.full_like(local, -1))
        num_sample = self.num_sampled(labels) if num_sample is None else num_sample
        device = labels.device
        if num_sample >= self.num_classes:
            return torch.arange(self.num_local, device=device), local_target
        score = torch.rand(self.num_classes, device=device)  # the same on every rank: one global pick
        score[labels] = 2.0
        picked = torch.topk(score, num_sample, sorted=False).indices
        kept = (picked[(picked >= self.class_start) & (picked < self.class_start + self.num_local)]
                - self.class_start).sort().values
        remap = torch.full((self.num_local,), -1, dtype=torch.long, device=device)
        remap[kept] = torch.arange(kept.numel(), device=device)
        target = torch.where(local_target >= 0, remap[local_target.clamp_min(0)], local_target)
        return kept, target

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean margin-softmax loss over the global batch (every rank returns the same value)."""
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ConfigError(f"labels must be in [0, {self.num_classes}). Got range "
                              f"[{int(labels.min())}, {int(labels.max())}].")
        embeddings = all_gather_grad(embeddings)
        labels = all_gather_nograd(labels)
        total_columns = self.num_sampled(labels)
        kept, target = self.sample(labels, total_columns)
        weight = self.weight if kept.numel() == self.num_local else self.weight[kept]
        cos = F.linear(F.normalize(embeddings), F.normalize(weight)).clamp(-1.0, 1.0)
        logits = self.margin(cos, target, total_columns)
        return sharded_cross_entropy(logits, target, total_columns, self.margin.config.label_smoothing)
