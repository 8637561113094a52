"""MoCo losses: InfoNCE against a queue of keys (MoCo v1/v2) and the symmetric in-batch form (MoCo v3)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .contrastive import info_nce_loss


def moco_queue_loss(query: torch.Tensor, key: torch.Tensor, queue: torch.Tensor,
                    temperature: float = 0.2) -> torch.Tensor:
    """InfoNCE of MoCo (He et al., CVPR 2020, eq. 1; MoCo v2: t = 0.2).

    query: ``(B, D)`` from the encoder; key: ``(B, D)`` from the momentum encoder (detached here);
    queue: ``(K, D)`` keys of earlier batches (the negatives). All are L2-normalised here. For each query

        l_i = -log exp(q_i . k_i / t) / (exp(q_i . k_i / t) + sum_j exp(q_i . queue_j / t))

    Returns the batch mean. Per-sample, so the mean over processes equals the global-batch loss as long as
    every process holds the same queue (the method enqueues the keys gathered from all processes).
    """
    q = F.normalize(query, dim=-1)
    k = F.normalize(key.detach(), dim=-1)
    negatives = F.normalize(queue.detach(), dim=-1)
    positive = (q * k).sum(dim=-1, keepdim=True)  # (B, 1)
    logits = torch.cat([positive, q @ negatives.T], dim=1) / temperature  # (B, 1 + K)
    return F.cross_entropy(logits, torch.zeros(q.shape[0], dtype=torch.long, device=q.device))


def moco_v3_loss(q1: torch.Tensor, q2: torch.Tensor, k1: torch.Tensor, k2: torch.Tensor,
                 temperature: float = 0.2) -> torch.Tensor:
    """MoCo v3 (Chen, Xie & He, ICCV 2021, alg. 1): ``ctr(q1, k2) + ctr(q2, k1)``, each InfoNCE against the
    keys of the global batch (gathered across processes), scaled by ``2 t`` as in the official code.

    q1, q2: ``(B, D)`` predictor outputs of views 1 and 2; k1, k2: ``(B, D)`` momentum-encoder outputs (no
    gradient is taken through them).
    """
    ctr = lambda q, k: info_nce_loss(q, k.detach(), temperature) * 2 * temperature  # noqa: E731
    return ctr(q1, k2) + ctr(q2, k1)
