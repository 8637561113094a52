"""SwAV's online clustering: Sinkhorn-Knopp codes and the swapped prediction loss (Caron et al., NeurIPS 2020)."""
from __future__ import annotations

import torch
import torch.distributed as dist
import torch.nn.functional as F

from .distributed import all_reduce_no_grad, is_distributed, world_size


@torch.no_grad()
def sinkhorn_knopp(scores: torch.Tensor, epsilon: float = 0.05, iterations: int = 3) -> torch.Tensor:
    """Soft codes ``Q`` for prototype scores, equipartitioned over the global batch (SwAV eq. 3-4, alg. 1).

    scores: ``(B, K)`` dot products of normalised embeddings with normalised prototypes (this process's
    share of the global batch of ``N = world * B``). ``Q = diag(u) exp(scores / epsilon) diag(v)`` is scaled
    so each of the K prototypes gets total mass ``1/K`` and each of the N samples ``1/N``; the row and
    column sums are all-reduced across processes, as in SwAV's ``distributed_sinkhorn``. Returns ``(B, K)``
    codes whose rows sum to 1 (``N * Q``). epsilon = 0.05 and 3 iterations: SwAV sec. 4 / official code.
    Computed in float32; the global maximum is subtracted first (it cancels in the normalisation).
    """
    scores = scores.float()
    peak = all_reduce_no_grad(scores.max().clone(), dist.ReduceOp.MAX if is_distributed() else None)
    q = torch.exp((scores - peak) / epsilon).T  # (K, B)
    num_prototypes, num_samples = q.shape[0], q.shape[1] * world_size()
    q /= all_reduce_no_grad(q.sum())
    for _ in range(iterations):
        q /= all_reduce_no_grad(q.sum(dim=1, keepdim=True))  # each prototype: total mass 1/K
        q /= num_prototypes
        q /= q.sum(dim=0, keepdim=True)  # each sample: total mass 1/N (columns are local)
        q /= num_samples
    return (q * num_samples).T


def swapped_prediction_loss(scores: list[torch.Tensor], codes: list[torch.Tensor],
                            temperature: float = 0.1) -> torch.Tensor:
    """SwAV eq. 1-2: predict the code of crop ``i`` from every other crop ``v``.

    scores: one ``(B, K)`` prototype-score tensor per crop (globals first, then locals); codes: ``(B, K)``
    Sinkhorn codes of the first ``len(codes)`` crops (SwAV's ``crops_for_assign``, the 2 global crops).

        L = 1/|assign| sum_i 1/(V-1) sum_{v != i} mean_b [ - sum_k q_i[b, k] log softmax(s_v[b] / t)_k ]

    temperature = 0.1 (SwAV sec. 4). Per-sample, so the mean over processes equals the global loss.
    """
    if len(scores) < 2:
        raise ValueError(f"SwAV needs at least 2 crops, got {len(scores)}")
    total = scores[0].new_zeros(())
    for i, q in enumerate(codes):
        sub = sum(-(q * F.log_softmax(scores[v] / temperature, dim=-1)).sum(dim=-1).mean()
                  for v in range(len(scores)) if v != i)
        total = total + sub / (len(scores) - 1)
    return total / len(codes)
