"""CPC's InfoNCE (van den Oord, Li and Vinyals, "Representation Learning with Contrastive Predictive Coding", 2018).

For one prediction step k, the prediction ``W_k c_t`` must pick the true future ``z_{t+k}`` among candidates
(CPC eq. 4): the other positions of the SAME sequence and the positions of the OTHER sequences, scored by a dot
product (CPC eq. 3, the log-bilinear ``f_k = exp(z^T W_k c)``; a cosine score passes normalised vectors and a
temperature). Which sequences are candidates and how many of them enter the softmax follow the reference:

- ``group_size=0``: every position of every sequence of the global batch (gathered across processes).
- ``group_size=g``: the batch of this process is cut into groups of ``g`` consecutive sequences and a prediction's
  candidates are the positions of its own group (CPC sec. 3.1: "8 GPUs each with a minibatch of 8 examples from
  which the negative samples in the contrastive loss are drawn"; facebookresearch/CPC_audio runs its criterion
  per GPU under ``DataParallel``, ``--batchSizeGPU 8``).
- ``num_negatives=M``: the softmax holds the positive and ``M`` negatives drawn uniformly (with replacement) from
  the candidates, as CPC_audio's ``CPCUnsupersivedCriterion.sampleClean`` (``--negativeSamplingExt 128``); a draw
  can hit the positive, as there. ``0``: every candidate enters the softmax.
"""
from __future__ import annotations

from typing import Optional

import torch
import torch.nn.functional as F

from .distributed import gather_with_grad, rank


def cpc_info_nce(predictions: torch.Tensor, targets: torch.Tensor, temperature: float = 1.0,
                 group_size: int = 0, num_negatives: int = 0,
                 generator: Optional[torch.Generator] = None) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE of one prediction step.

    predictions: ``(B, N, D)`` predicted futures ``W_k c_t`` for N context positions of B sequences;
    targets: ``(B, N, D)`` the true encodings ``z_{t+k}`` at the same (sequence, position). Logits are
    ``predictions . targets / temperature`` over the candidates set by ``group_size`` / ``num_negatives`` (module
    docstring). Returns ``(loss, top-1 accuracy)``, means over this process's predictions.
    """
    if predictions.shape != targets.shape or predictions.dim() != 3:
        raise ValueError(f"cpc_info_nce: predictions and targets must both be (B, N, D), got "
                         f"{tuple(predictions.shape)} and {tuple(targets.shape)}")
    b, n, d = predictions.shape
    if group_size > 0:
        if b % group_size:
            raise ValueError(f"cpc_info_nce: batch of {b} sequences is not a multiple of group_size={group_size}")
        groups = b // group_size
        query = predictions.reshape(groups, group_size * n, d)
        candidates = targets.reshape(groups, group_size * n, d)
        logits = (query @ candidates.transpose(1, 2)).reshape(b * n, group_size * n) / temperature
        positive = torch.arange(group_size * n, device=query.device).repeat(groups)
    else:
        query = predictions.reshape(b * n, d)
        candidates = gather_with_grad(targets.reshape(b * n, d))  # (world * B * N, D)
        logits = query @ candidates.T / temperature
        positive = torch.arange(b * n, device=query.device) + rank() * b * n
    if num_negatives > 0:
        drawn = torch.randint(logits.shape[1], (logits.shape[0], num_negatives), device=logits.device,
                              generator=generator)
        logits = torch.cat([logits.gather(1, positive[:, None]), logits.gather(1, drawn)], dim=1)
        positive = torch.zeros_like(positive)
    loss = F.cross_entropy(logits, positive)
    top1 = (logits.argmax(dim=1) == positive).float().mean()
    return loss, top1.detach()
