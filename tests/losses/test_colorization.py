"""Colorization's rebalanced soft cross-entropy (moved from methods/colorization.py) against eq. 2-4 written out."""
import torch

from videossl.losses.colorization import rebalance_weights, rebalanced_cross_entropy


def test_rebalanced_cross_entropy_matches_the_equations():
    torch.manual_seed(0)
    q = 7
    logits = torch.randn(20, q)
    target = torch.softmax(torch.randn(20, q) * 3, dim=1)
    prior = torch.softmax(torch.randn(q), dim=0)
    w = rebalance_weights(prior, 0.5)
    raw = 1 / (0.5 * prior + 0.5 / q)
    torch.testing.assert_close(w, raw / (prior * raw).sum())
    torch.testing.assert_close((prior * w).sum(), torch.tensor(1.0))  # E_p[w] = 1
    expected = sum(-w[target[n].argmax()] * (target[n] * torch.log_softmax(logits[n], 0)).sum() for n in range(20)) / 20
    torch.testing.assert_close(rebalanced_cross_entropy(logits, target, w), expected)
    plain = sum(-(target[n] * torch.log_softmax(logits[n], 0)).sum() for n in range(20)) / 20
    torch.testing.assert_close(rebalanced_cross_entropy(logits, target), plain)
    # a uniform prior gives weights 1: the plain soft cross-entropy
    torch.testing.assert_close(rebalance_weights(torch.full((q,), 1 / q)), torch.ones(q))
