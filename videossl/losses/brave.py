"""BraVe's regression loss (Recasens et al., "Broaden Your Views for Self-Supervised Video Learning", ICCV 2021,
https://arxiv.org/abs/2103.16559).

For a pair of views (narrow n, broad b) with projections ``z`` and predictions ``p = h(z)``, BraVe (eq. 1-2)
regresses each view's prediction onto the other's normalised projection, in both directions::

    L(n, b) = || p_n/|p_n| - z_b/|z_b| ||^2 + || p_b/|p_b| - z_n/|z_n| ||^2

Each term is BYOL's normalised MSE (:func:`videossl.losses.regression.normalized_mse_loss`, ``2 - 2 cos``), not
written again here. The paper sums ``L`` over the broad views; the released code (``google-deepmind/brave`` @
0ae20d9, ``brave/models/brave/brave.py``, ``_regression_loss``) uses half of each term (``0.5 ||.||^2 = 1 - cos``,
:func:`brave_loss`) and takes the mean of the ``2 x broad views`` one-direction terms, which is what
``videossl.methods.brave`` trains with. The targets are treated as constants (stop-gradient), as in BYOL / SimSiam;
BraVe has no momentum target network, so the symmetric, stop-gradient form keeps the two backbones from
collapsing onto each other. ``stop_gradient=False`` lets gradients reach the targets (for ablations).
"""
from __future__ import annotations

import torch

from .regression import normalized_mse_loss

# BraVe eq. 1's term ``|| p/|p| - z/|z| ||^2``, batch mean: BYOL's loss under the paper's name.
brave_regression_loss = normalized_mse_loss


def brave_loss(prediction: torch.Tensor, target: torch.Tensor, stop_gradient: bool = True) -> torch.Tensor:
    """BraVe code's ``_regression_loss``: ``mean_b 0.5 || p/|p| - z/|z| ||^2 = 1 - cos(p, z)``; ``(B, D)`` each.
    Half of BraVe eq. 1's term (:func:`brave_regression_loss`, ``2 - 2 cos``)."""
    return 0.5 * normalized_mse_loss(prediction, target, stop_gradient)


def brave_pair_loss(narrow_prediction: torch.Tensor, narrow_projection: torch.Tensor,
                    broad_prediction: torch.Tensor, broad_projection: torch.Tensor,
                    stop_gradient: bool = True) -> torch.Tensor:
    """``L(n, b)`` above (the paper's form): the narrow view predicts the broad projection and the broad view the
    narrow one. All four tensors ``(B, D)``."""
    return (normalized_mse_loss(narrow_prediction, broad_projection, stop_gradient)
            + normalized_mse_loss(broad_prediction, narrow_projection, stop_gradient))
