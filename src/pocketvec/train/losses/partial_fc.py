"""PartialFC: class centres for up to millions of (pseudo-)classes, sharded across ranks, sampled per step.

Like insightface's partial_fc_v2, but it runs anywhere: rank 0 of 1 with no process group on a CPU, or
sharded under torchrun (gloo / nccl) when a process group is initialised. Each rank owns a contiguous
slice of the centres; the embeddings of the global batch are gathered; each rank keeps its batch's
positive centres plus a random fraction of the others; the softmax is normalised across ranks.
With sample_rate 1.0 and one rank this is exactly the full margin softmax.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from pocketvec.errors import ConfigError
from pocketvec.train.distributed import all_gather_grad, all_gather_nograd, all_reduce_sum, rank_and_world
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

    def sample(self, local_target: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Indices of the kept local centres (positives always, then random others) and remapped targets."""
        positives = torch.unique(local_target[local_target >= 0])
        num_sample = max(int(self.sample_rate * self.num_local), positives.numel())
        if num_sample >= self.num_local:
            return torch.arange(self.num_local, device=local_target.device), local_target
        device = local_target.device
        score = torch.rand(self.num_local, device=device)
        score[positives] = 2.0
        kept = torch.topk(score, num_sample).indices.sort().values
        remap = torch.full((self.num_local,), -1, dtype=torch.long, device=device)
        remap[kept] = torch.arange(num_sample, device=device)
        target = torch.where(local_target >= 0, remap[local_target.clamp_min(0)], local_target)
        return kept, target

    def forward(self, embeddings: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """Mean margin-softmax loss over the global batch (every rank returns the same value)."""
        if labels.min() < 0 or labels.max() >= self.num_classes:
            raise ConfigError(f"labels must be in [0, {self.num_classes}). Got range "
                              f"[{int(labels.min())}, {int(labels.max())}].")
        embeddings = all_gather_grad(embeddings)
        labels = all_gather_nograd(labels)
        local = labels - self.class_start
        local_target = torch.where((local >= 0) & (local < self.num_local), local, torch.full_like(local, -1))
        kept, target = self.sample(local_target)
        weight = self.weight if kept.numel() == self.num_local else self.weight[kept]
        cos = F.linear(F.normalize(embeddings), F.normalize(weight)).clamp(-1.0, 1.0)
        total_columns = int(all_reduce_sum(torch.tensor(float(kept.numel()), device=cos.device)).item())
        logits = self.margin(cos, target, total_columns)
        return sharded_cross_entropy(logits, target, total_columns, self.margin.config.label_smoothing)
