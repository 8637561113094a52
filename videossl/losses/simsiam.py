"""SimSiam's loss (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def negative_cosine_similarity(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """SimSiam eq. 1 with stop-gradient (eq. 3): ``D(p, stopgrad(z)) = -cos(p, z)``, batch mean.

    prediction, target: ``(B, D)``. Per-sample, so the mean over processes equals the global-batch loss.
    """
    return -F.cosine_similarity(prediction, target.detach(), dim=-1).mean()


def simsiam_loss(p1: torch.Tensor, p2: torch.Tensor, z1: torch.Tensor, z2: torch.Tensor) -> torch.Tensor:
    """SimSiam eq. 4: ``L = D(p1, stopgrad(z2)) / 2 + D(p2, stopgrad(z1)) / 2``; minimum -1."""
    return 0.5 * negative_cosine_similarity(p1, z2) + 0.5 * negative_cosine_similarity(p2, z1)
