"""VICReg: variance, invariance and covariance regularisation (Bardes, Ponce & LeCun, ICLR 2022)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .distributed import gather_with_grad


def variance_term(z: torch.Tensor, gamma: float = 1.0, eps: float = 1e-4) -> torch.Tensor:
    """VICReg eq. 1: ``v(Z) = mean_j max(0, gamma - sqrt(Var(z^j) + eps))`` (unbiased variance). z: ``(N, D)``."""
    std = torch.sqrt(z.var(dim=0) + eps)
    return F.relu(gamma - std).mean()


def covariance_term(z: torch.Tensor) -> torch.Tensor:
    """VICReg eq. 3-4: ``c(Z) = (1/d) sum_{i != j} C(Z)_ij^2`` with ``C(Z)`` the unbiased covariance ``(D, D)``."""
    n, d = z.shape
    z = z - z.mean(dim=0)
    cov = z.T @ z / (n - 1)
    return (cov.pow(2).sum() - torch.diagonal(cov).pow(2).sum()) / d


def vicreg_loss(z1: torch.Tensor, z2: torch.Tensor, sim_coeff: float = 25.0, std_coeff: float = 25.0,
                cov_coeff: float = 1.0, gamma: float = 1.0) -> torch.Tensor:
    """VICReg as the official code computes it: ``lambda s(Z, Z') + mu [v(Z) + v(Z')] / 2 + nu [c(Z) + c(Z')]``
    (lambda = mu = 25, nu = 1).

    The variance term is the MEAN of the two views' hinges, as facebookresearch/vicreg main_vicreg.py
    (``std_loss = mean(relu(1 - std_x)) / 2 + mean(relu(1 - std_y)) / 2``, the code the paper's coefficients were
    tuned with; lightly's ``VICRegLoss`` the same), not the sum that eq. 6 of the paper prints (which would weigh
    it twice). z1, z2: ``(B, D)`` expander outputs of two views, gathered with gradients across processes as in
    the official code (``FullGatherLayer``), so every term uses the global batch; the value is the same on every
    process. ``s`` is the mean squared error over samples and dimensions (eq. 5 / N; the code's ``F.mse_loss``).
    """
    z1, z2 = gather_with_grad(z1), gather_with_grad(z2)
    if z1.shape[0] < 2:
        raise ValueError(f"VICReg needs a global batch of at least 2 samples, got {z1.shape[0]}")
    invariance = F.mse_loss(z1, z2)
    variance = (variance_term(z1, gamma) + variance_term(z2, gamma)) / 2  # the official code's average
    covariance = covariance_term(z1) + covariance_term(z2)
    return sim_coeff * invariance + std_coeff * variance + cov_coeff * covariance
