"""CPC's InfoNCE (van den Oord, Li and Vinyals, "Representation Learning with Contrastive Predictive Coding", 2018).

For one prediction step k, the prediction ``W_k c_t`` must pick the true future ``z_{t+k}`` among candidates
(CPC eq. 4): the other positions of the SAME sequence and every position of the OTHER sequences of the global
batch, scored by a dot product (CPC eq. 3, the log-bilinear ``f_k = exp(z^T W_k c)``).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .distributed import gather_with_grad, rank


def cpc_info_nce(predictions: torch.Tensor, targets: torch.Tensor,
                 temperature: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    """InfoNCE of one prediction step.

    predictions: ``(B, N, D)`` predicted futures ``W_k c_t`` for N context positions of B sequences;
    targets: ``(B, N, D)`` the true encodings ``z_{t+k}`` at the same (sequence, position). Every one of the
    ``world * B * N`` targets is a candidate for every prediction (negatives from the same sequence at other
    times and from other sequences). Returns ``(loss, top-1 accuracy)``, means over this process's predictions.
    """
    if predictions.shape != targets.shape or predictions.dim() != 3:
        raise ValueError(f"cpc_info_nce: predictions and targets must both be (B, N, D), got "
                         f"{tuple(predictions.shape)} and {tuple(targets.shape)}")
    b, n, _ = predictions.shape
    query = predictions.reshape(b * n, -1)
    candidates = gather_with_grad(targets.reshape(b * n, -1))  # (world * B * N, D)
    logits = query @ candidates.T / temperature
    positive = torch.arange(b * n, device=query.device) + rank() * b * n
    loss = F.cross_entropy(logits, positive)
    top1 = (logits.argmax(dim=1) == positive).float().mean()
    return loss, top1.detach()
