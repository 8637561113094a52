"""Regression losses between predictions and (stop-gradient) targets: the BYOL / BraVe / ELo family.

BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020, https://arxiv.org/abs/2006.07733) eq. 2, BraVe
(Recasens et al., ICCV 2021, https://arxiv.org/abs/2103.16559) eq. 1 and ELo's distillation between unit vectors
(Piergiovanni et al., CVPR 2020, https://arxiv.org/abs/2002.12177) are the same quantity,
``||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z)``; it is written once, here.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def normalized_mse_loss(prediction: torch.Tensor, target: torch.Tensor, stop_gradient: bool = True) -> torch.Tensor:
    """``||p/|p| - z/|z|||^2 = 2 - 2 cos(p, z)`` per sample, batch mean (BYOL eq. 2, as BYOL's code computes it).

    prediction, target: ``(B, D)``. The target is detached (stop-gradient) unless ``stop_gradient=False`` (BraVe's
    ablation). Computed as ``2 - 2 cos``; the squared difference of the normalised vectors is the same number up to
    float rounding (tests/losses/test_regression.py: within 1e-6). Purely per-sample, so the mean over processes
    of per-process losses equals the global-batch loss.
    """
    if prediction.shape != target.shape:
        raise ValueError(f"normalized_mse_loss: prediction {tuple(prediction.shape)} and target "
                         f"{tuple(target.shape)} differ")
    if stop_gradient:
        target = target.detach()
    p = F.normalize(prediction, dim=-1)
    z = F.normalize(target, dim=-1)
    return (2 - 2 * (p * z).sum(dim=-1)).mean()
