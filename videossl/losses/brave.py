"""BraVe's regression loss (Recasens et al., "Broaden Your Views for Self-Supervised Video Learning", ICCV 2021).

For a pair of views (narrow n, broad b) with projections ``z`` and predictions ``p = h(z)``, BraVe (eq. 1-2)
regresses each view's prediction onto the other's normalised projection, in both directions::

    L(n, b) = || p_n/|p_n| - z_b/|z_b| ||^2 + || p_b/|p_b| - z_n/|z_n| ||^2

The paper sums ``L`` over the broad views; the released code (``google-deepmind/brave`` @ 0ae20d9,
``brave/models/brave/brave.py``, ``_regression_loss``) uses half of each term (``0.5 ||.||^2 = 1 - cos``) and takes the
mean of the ``2 x broad views`` one-direction terms, which is what ``videossl.methods.brave`` trains with. The targets are treated as constants (stop-gradient), as in BYOL / SimSiam;
BraVe has no momentum target network, so the symmetric, stop-gradient form keeps the two backbones from
collapsing onto each other. ``stop_gradient=False`` lets gradients reach the targets (for ablations).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F


def brave_regression_loss(prediction: torch.Tensor, target: torch.Tensor, stop_gradient: bool = True,
                          eps: float = 1e-6) -> torch.Tensor:
    """``|| p/|p| - z/|z| ||^2 = 2 - 2 cos(p, z)`` per sample, batch mean. prediction, target: ``(B, D)``.

    Per-sample, so the mean over processes of per-process losses is the global-batch loss (no gathering).
    """
    if prediction.shape != target.shape:
        raise ValueError(f"brave loss: prediction {tuple(prediction.shape)} and target {tuple(target.shape)} differ")
    if stop_gradient:
        target = target.detach()
    p = F.normalize(prediction, dim=-1, eps=eps)
    z = F.normalize(target, dim=-1, eps=eps)
    return ((p - z) ** 2).sum(dim=-1).mean()


def brave_pair_loss(narrow_prediction: torch.Tensor, narrow_projection: torch.Tensor,
                    broad_prediction: torch.Tensor, broad_projection: torch.Tensor,
                    stop_gradient: bool = True) -> torch.Tensor:
    """``L(n, b)`` above: the narrow view predicts the broad projection and the broad view the narrow one.
    All four tensors ``(B, D)``."""
    return (brave_regression_loss(narrow_prediction, broad_projection, stop_gradient)
            + brave_regression_loss(broad_prediction, narrow_projection, stop_gradient))
