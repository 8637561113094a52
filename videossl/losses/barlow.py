"""Barlow Twins' redundancy-reduction loss (Zbontar et al., ICML 2021)."""
from __future__ import annotations

import torch

from .distributed import gather_with_grad


def cross_correlation(z1: torch.Tensor, z2: torch.Tensor, eps: float = 1e-5) -> torch.Tensor:
    """Barlow Twins eq. 2: ``C_ij = sum_b z1n_bi z2n_bj / N`` with each feature standardised over the global
    batch (zero mean, unit std; the official code's affine-free BatchNorm, i.e. biased variance).

    z1, z2: ``(B, D)`` per process; both are gathered with gradients, so ``C`` ``(D, D)`` is the global one.
    """
    z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
    n = z1.shape[0]
    if n < 2:
        raise ValueError(f"Barlow Twins needs a global batch of at least 2 samples, got {n}")
    z1 = (z1 - z1.mean(0)) / torch.sqrt(z1.var(0, unbiased=False) + eps)
    z2 = (z2 - z2.mean(0)) / torch.sqrt(z2.var(0, unbiased=False) + eps)
    return z1.T @ z2 / n


def barlow_twins_loss(z1: torch.Tensor, z2: torch.Tensor, lambda_offdiag: float = 5e-3) -> torch.Tensor:
    """Barlow Twins eq. 1: ``sum_i (1 - C_ii)^2 + lambda * sum_i sum_{j != i} C_ij^2``.

    z1, z2: ``(B, D)`` projector outputs of two views. lambda = 5.1e-3 in the paper (sec. 4, for D = 8192).
    The value is the same on every process (computed from the global batch); DDP's gradient averaging then
    gives the 1-process gradient.
    """
    c = cross_correlation(z1, z2)
    on_diag = (1 - torch.diagonal(c)).pow(2).sum()
    off_diag = c.pow(2).sum() - torch.diagonal(c).pow(2).sum()
    return on_diag + lambda_offdiag * off_diag
