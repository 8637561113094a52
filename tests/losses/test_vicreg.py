"""VICReg's loss against eq. 1-6 written out (with the official code's averaged variance term), against the
official code's forward and lightly's VICRegLoss, and its limits."""
import torch
import torch.nn.functional as F

from videossl.losses.vicreg import covariance_term, variance_term, vicreg_loss


def vicreg_literal(z1, z2, lam, mu, nu):
    n, d = z1.shape
    inv = sum((float(z1[b, i]) - float(z2[b, i])) ** 2 for b in range(n) for i in range(d)) / (n * d)
    def var(z):
        out = 0.0
        for i in range(d):
            m = sum(float(z[b, i]) for b in range(n)) / n
            v = sum((float(z[b, i]) - m) ** 2 for b in range(n)) / (n - 1)
            out += max(0.0, 1.0 - (v + 1e-4) ** 0.5)
        return out / d
    def cov(z):
        m = [sum(float(z[b, i]) for b in range(n)) / n for i in range(d)]
        c = lambda i, j: sum((float(z[b, i]) - m[i]) * (float(z[b, j]) - m[j]) for b in range(n)) / (n - 1)
        return sum(c(i, j) ** 2 for i in range(d) for j in range(d) if i != j) / d
    # facebookresearch/vicreg main_vicreg.py averages the two variance hinges (eq. 6 of the paper sums them)
    return lam * inv + mu * (var(z1) + var(z2)) / 2 + nu * (cov(z1) + cov(z2))


def test_vicreg_matches_equation():
    z1, z2 = 0.5 * torch.randn(7, 5), 0.5 * torch.randn(7, 5)
    assert abs(vicreg_loss(z1, z2, 25, 25, 1).item() - vicreg_literal(z1, z2, 25, 25, 1)) < 1e-3


def test_vicreg_limits():
    # Collapsed embeddings: variance hinge is ~1 per dimension; spread, decorrelated ones pay nothing.
    collapsed = torch.ones(6, 4)
    assert abs(variance_term(collapsed).item() - (1 - 1e-2)) < 1e-6
    spread = torch.tensor([[2.0, 2.0], [2.0, -2.0], [-2.0, 2.0], [-2.0, -2.0]])
    assert variance_term(spread).item() == 0.0
    assert covariance_term(spread).item() < 1e-10
    assert vicreg_loss(spread, spread.clone()).item() < 1e-8  # invariant, spread, decorrelated: zero


def vicreg_official(x, y, sim_coeff=25.0, std_coeff=25.0, cov_coeff=1.0):
    """VICReg.forward of facebookresearch/vicreg main_vicreg.py (one process), transcribed."""
    batch_size, num_features = x.shape
    repr_loss = F.mse_loss(x, y)
    x = x - x.mean(dim=0)
    y = y - y.mean(dim=0)
    std_x = torch.sqrt(x.var(dim=0) + 0.0001)
    std_y = torch.sqrt(y.var(dim=0) + 0.0001)
    std_loss = torch.mean(F.relu(1 - std_x)) / 2 + torch.mean(F.relu(1 - std_y)) / 2
    cov_x = (x.T @ x) / (batch_size - 1)
    cov_y = (y.T @ y) / (batch_size - 1)
    off = lambda c: c - torch.diag(torch.diagonal(c))  # noqa: E731
    cov_loss = off(cov_x).pow(2).sum() / num_features + off(cov_y).pow(2).sum() / num_features
    return sim_coeff * repr_loss + std_coeff * std_loss + cov_coeff * cov_loss


def test_vicreg_matches_the_official_code_and_lightly():
    from lightly.loss import VICRegLoss

    z1, z2 = 0.3 * torch.randn(16, 8), 0.3 * torch.randn(16, 8)  # small spread: the variance hinge is active
    ours = vicreg_loss(z1, z2)
    assert torch.allclose(ours, vicreg_official(z1, z2), atol=1e-5)
    assert torch.allclose(ours, VICRegLoss()(z1, z2), atol=1e-5)
    # the variance term enters once (the mean of the two views' hinges), not twice as eq. 6 would have it
    summed = ours + 25.0 * (variance_term(z1) + variance_term(z2)) / 2
    assert not torch.allclose(ours, summed)
