"""Helpers to gather and reduce tensors across processes, with or without gradients (shared by every loss file)."""
from __future__ import annotations

import torch
import torch.distributed as dist


def is_distributed() -> bool:
    return dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1


def world_size() -> int:
    return dist.get_world_size() if is_distributed() else 1


def rank() -> int:
    return dist.get_rank() if is_distributed() else 0


def gather_with_grad(x: torch.Tensor) -> torch.Tensor:
    """``(B, ...)`` on each process -> ``(world * B, ...)``, rank-major; gradients flow back to every rank."""
    if not is_distributed():
        return x
    from torch.distributed.nn.functional import all_gather

    return torch.cat(all_gather(x), dim=0)


@torch.no_grad()
def gather_no_grad(x: torch.Tensor) -> torch.Tensor:
    """``(B, ...)`` -> ``(world * B, ...)`` without gradients (queues, targets, statistics)."""
    if not is_distributed():
        return x
    out = [torch.empty_like(x) for _ in range(world_size())]
    dist.all_gather(out, x.contiguous())
    return torch.cat(out, dim=0)


def all_reduce_sum(x: torch.Tensor) -> torch.Tensor:
    """Sum over processes with gradients (for batch statistics such as Barlow Twins' correlation)."""
    if not is_distributed():
        return x
    from torch.distributed.nn.functional import all_reduce

    return all_reduce(x)


def all_reduce_no_grad(x: torch.Tensor, op: dist.ReduceOp | None = None) -> torch.Tensor:
    """In-place reduction over processes, not differentiable (SUM unless ``op``; SwAV's Sinkhorn sums, DINO's
    centre); returns ``x``. On one process ``x`` is returned unchanged."""
    if is_distributed():
        dist.all_reduce(x, op=op or dist.ReduceOp.SUM)
    return x
