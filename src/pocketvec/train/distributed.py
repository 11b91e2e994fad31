"""torch.distributed helpers that also run in one process with no process group (rank 0 of 1).

The autograd rules are those of a loss computed identically on every rank from sharded logits:
- `all_reduce_sum`: forward sums across ranks; backward is the identity, because every rank holds the
  same downstream graph and so already the full upstream gradient.
- `all_gather_grad`: forward concatenates the ranks' batches; backward sums the partial gradients that
  each rank computed through its own class shard, then keeps this rank's slice.
"""

from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized()


def init_from_environment() -> None:
    """Under torchrun (WORLD_SIZE > 1 in the environment) join the process group: nccl on GPU, else gloo."""
    import os

    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and dist.is_available() and not dist.is_initialized():
        if torch.cuda.is_available():
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
        dist.init_process_group("nccl" if torch.cuda.is_available() else "gloo")


def rank_and_world() -> tuple[int, int]:
    if is_distributed():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


class _AllReduceSum(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        out = tensor.clone()
        dist.all_reduce(out, op=dist.ReduceOp.SUM)
        return out

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        return grad


class _AllGather(torch.autograd.Function):
    @staticmethod
    def forward(ctx, tensor: torch.Tensor) -> torch.Tensor:
        parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
        dist.all_gather(parts, tensor.contiguous())
        ctx.rank, ctx.size = dist.get_rank(), tensor.shape[0]
        return torch.cat(parts)

    @staticmethod
    def backward(ctx, grad: torch.Tensor) -> torch.Tensor:
        grad = grad.contiguous().clone()
        dist.all_reduce(grad, op=dist.ReduceOp.SUM)
        return grad[ctx.rank * ctx.size : (ctx.rank + 1) * ctx.size]


def all_reduce_sum(tensor: torch.Tensor) -> torch.Tensor:
    return _AllReduceSum.apply(tensor) if is_distributed() else tensor


def all_reduce_max(tensor: torch.Tensor) -> torch.Tensor:
    """Element-wise max across ranks, without gradient (used only for numerical stability)."""
    out = tensor.detach().clone()
    if is_distributed():
        dist.all_reduce(out, op=dist.ReduceOp.MAX)
    return out


def all_gather_grad(tensor: torch.Tensor) -> torch.Tensor:
    """Every rank's batch (equal sizes), concatenated in rank order, with gradients flowing back."""
    return _AllGather.apply(tensor) if is_distributed() else tensor


def all_gather_nograd(tensor: torch.Tensor) -> torch.Tensor:
    if not is_distributed():
        return tensor
    parts = [torch.empty_like(tensor) for _ in range(dist.get_world_size())]
    dist.all_gather(parts, tensor.contiguous())
    return torch.cat(parts)
