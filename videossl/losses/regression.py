"""Regression losses between predictions and (stop-gradient) targets: BYOL / SimSiam family."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def normalized_mse_loss(prediction: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """BYOL's loss (Grill et al., NeurIPS 2020, eq. 2): ``||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z)``.

    prediction, target: ``(B, D)``. The target is detached here (stop-gradient). Returns the batch mean.
    Purely per-sample, so the mean over processes of per-process losses equals the global-batch loss.
    """
    p = F.normalize(prediction, dim=-1)
    z = F.normalize(target.detach(), dim=-1)
    return (2 - 2 * (p * z).sum(dim=-1)).mean()
