"""VICReg's loss against eq. 1-6 written out, and its limits."""
import torch

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
    return lam * inv + mu * (var(z1) + var(z2)) + nu * (cov(z1) + cov(z2))


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
