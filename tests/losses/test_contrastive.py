"""Losses against literal transcriptions of the papers' equations, and known limits."""
import math

import torch
import torch.nn.functional as F

from videossl.losses.contrastive import info_nce_loss, nt_xent_loss
from videossl.losses.regression import normalized_mse_loss


def nt_xent_literal(z1, z2, t):
    """SimCLR eq. 1 written as in the paper: loop over the 2N anchors, sum over k != i."""
    z = F.normalize(torch.cat([z1, z2]), dim=1)
    n = z1.shape[0]
    losses = []
    for i in range(2 * n):
        j = (i + n) % (2 * n)
        sim = lambda a, b: (z[a] @ z[b]).item()
        denom = sum(math.exp(sim(i, k) / t) for k in range(2 * n) if k != i)
        losses.append(-math.log(math.exp(sim(i, j) / t) / denom))
    return sum(losses) / (2 * n)


def test_nt_xent_matches_equation():
    z1, z2 = torch.randn(5, 8), torch.randn(5, 8)
    assert abs(nt_xent_loss(z1, z2, 0.3).item() - nt_xent_literal(z1, z2, 0.3)) < 1e-5


def test_nt_xent_identical_views_orthogonal_negatives():
    # Identical positives (sim 1) and orthogonal negatives (sim 0): l = -log(e^{1/t} / (e^{1/t} + 2(N-1)))
    n, t = 4, 0.5
    z = torch.eye(n)
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2 * (n - 1)))
    assert abs(nt_xent_loss(z, z.clone(), t).item() - expected) < 1e-6


def test_info_nce_picks_own_key():
    q = torch.eye(3)
    k = torch.eye(3)
    t = 0.1
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + 2))
    assert abs(info_nce_loss(q, k, t).item() - expected) < 1e-6


def test_normalized_mse_is_two_minus_two_cosine_and_stops_gradient():
    p = torch.randn(6, 4, requires_grad=True)
    z = torch.randn(6, 4, requires_grad=True)
    loss = normalized_mse_loss(p, z)
    expected = (2 - 2 * F.cosine_similarity(p, z, dim=1)).mean()
    assert torch.allclose(loss, expected)
    loss.backward()
    assert z.grad is None and p.grad is not None
    assert normalized_mse_loss(z.detach() * 3, z.detach()).item() < 1e-6  # scale-invariant, zero at alignment
