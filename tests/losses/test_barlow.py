"""Barlow Twins' loss against eq. 1-2 written out, and its known limits."""
import torch

from videossl.losses.barlow import barlow_twins_loss, cross_correlation


def barlow_literal(z1, z2, lam):
    n, d = z1.shape
    def standardise(z):
        mean = [sum(float(z[b, i]) for b in range(n)) / n for i in range(d)]
        std = [(sum((float(z[b, i]) - mean[i]) ** 2 for b in range(n)) / n + 1e-5) ** 0.5 for i in range(d)]
        return [[(float(z[b, i]) - mean[i]) / std[i] for i in range(d)] for b in range(n)]
    a, c = standardise(z1), standardise(z2)
    cc = [[sum(a[b][i] * c[b][j] for b in range(n)) / n for j in range(d)] for i in range(d)]
    on = sum((1 - cc[i][i]) ** 2 for i in range(d))
    off = sum(cc[i][j] ** 2 for i in range(d) for j in range(d) if i != j)
    return on + lam * off


def test_barlow_matches_equation():
    z1, z2 = torch.randn(6, 4), torch.randn(6, 4)
    assert abs(barlow_twins_loss(z1, z2, 0.3).item() - barlow_literal(z1, z2, 0.3)) < 1e-4


def test_barlow_perfectly_correlated_decorrelated_features_give_zero():
    # Identical views whose features are uncorrelated with each other: C = identity, loss 0.
    z = torch.tensor([[1.0, 1.0], [1.0, -1.0], [-1.0, 1.0], [-1.0, -1.0]])
    assert torch.allclose(cross_correlation(z, 2 * z + 3), torch.eye(2), atol=1e-4)
    assert barlow_twins_loss(z, 2 * z + 3, 5e-3).item() < 1e-6


def test_barlow_redundant_features_pay_off_diagonal():
    # Two copies of one feature: C is all ones, on-diagonal 0, off-diagonal 2 * lambda.
    x = torch.randn(8, 1)
    z = torch.cat([x, x], dim=1)
    assert abs(barlow_twins_loss(z, z, 0.5).item() - 2 * 0.5) < 1e-3
