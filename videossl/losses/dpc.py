"""Dense predictive coding loss (Han, Xie and Zisserman, "Video Representation Learning by Dense Predictive
Coding", ICCV-W 2019, eq. 5).

Every predicted feature ``phi_hat[b, i, k]`` (video ``b``, future step ``i``, spatial position ``k``) is
scored against every true feature ``phi[b', i', k']`` of the batch by a dot product; the positive is the one
with ``(b', i', k') = (b, i, k)``. The negatives are therefore of three kinds, as in the paper: other videos
(easy), the same video at other time steps (temporal hard negatives) and the same time at other positions
(spatial hard negatives). The loss is the mean over all ``(b, i, k)`` of ``-log softmax`` of the positive:

    L = - 1/(B I K) sum_{b,i,k} log  exp(phi_hat_{b,i,k} . phi_{b,i,k}) / sum_{b',i',k'} exp(phi_hat_{b,i,k} . phi_{b',i',k'})

(the paper writes the sum; DPC's code takes the mean through ``CrossEntropyLoss``, which only rescales it).
With several processes the true features of all processes are gathered (more negatives, the global batch).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .distributed import gather_with_grad, rank


def dpc_scores(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """``(B, I, K, D)`` predictions and ``(B', I, K, D)`` true features -> ``(B*I*K, B'*I*K)`` dot products."""
    d = prediction.shape[-1]
    return prediction.reshape(-1, d) @ target.reshape(-1, d).t()


def dpc_loss(prediction: torch.Tensor, target: torch.Tensor, temperature: float = 1.0,
             gather: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """DPC's dense InfoNCE. ``prediction``, ``target``: ``(B, I, K, D)`` = (batch, future steps, positions, dim).

    DPC uses raw dot products (``temperature = 1``, no normalisation), and so does MemDPC's released code
    (``TengdaHan/MemDPC``, ``memdpc/model.py``); ``temperature`` is there for normalised variants. Returns
    ``(loss, top1)`` with ``top1`` the fraction of predictions whose best match is their positive (the paper's
    training accuracy), detached. ``gather``: the true features of other processes are gathered (with gradients)
    as extra negatives; ``False`` scores this process's batch alone, as the reference code does (each
    ``nn.DataParallel`` replica computes its own score matrix).
    """
    if prediction.shape != target.shape or prediction.dim() != 4:
        raise ValueError(f"dpc_loss expects two (B, I, K, D) tensors of one shape, got {tuple(prediction.shape)} "
                         f"and {tuple(target.shape)}")
    all_targets = gather_with_grad(target) if gather else target  # (world * B, I, K, D) or (B, I, K, D)
    logits = dpc_scores(prediction, all_targets) / temperature  # (B*I*K, world*B*I*K)
    n = prediction.shape[0] * prediction.shape[1] * prediction.shape[2]
    offset = rank() * n if gather else 0  # positives sit in this rank's block of the gathered targets
    labels = torch.arange(n, device=prediction.device) + offset
    loss = F.cross_entropy(logits.float(), labels)
    top1 = (logits.argmax(dim=1) == labels).float().mean().detach()
    return loss, top1
