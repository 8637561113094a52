"""Colorization's class-rebalanced soft cross-entropy (Zhang, Isola and Efros, "Colorful Image Colorization",
ECCV 2016, https://arxiv.org/abs/1603.08511, eq. 2-4)."""
from __future__ import annotations

import torch
import torch.nn.functional as F


def rebalance_weights(prior: torch.Tensor, lam: float = 0.5) -> torch.Tensor:
    """Zhang et al. eq. 4: ``w ∝ ((1 - lambda) p + lambda / Q)^-1``, normalised so ``E_p[w] = 1`` (lambda = 0.5).

    prior: ``(Q,)`` the empirical distribution ``p`` of the (soft-encoded) colour bins. Returns ``(Q,)``.
    """
    w = 1.0 / ((1 - lam) * prior + lam / len(prior))
    return w / (prior * w).sum()  # E_p[w] = 1


def rebalanced_cross_entropy(logits: torch.Tensor, target: torch.Tensor,
                             class_weights: torch.Tensor | None = None) -> torch.Tensor:
    """Zhang et al. eq. 2: ``-mean_n v(Z_n) sum_q Z_nq log softmax(logits_n)_q``, a cross-entropy with soft
    targets, each position weighted by the weight of its most likely bin (``v(Z) = w[argmax_q Z_q]``, eq. 3).

    logits: ``(N, Q)`` (computed in float32); target: ``(N, Q)`` soft encodings (rows sum to 1); class_weights:
    ``(Q,)`` from :func:`rebalance_weights`, or None for an unweighted cross-entropy. Per position, so the mean
    over processes equals the global-batch loss when every process holds the same number of positions.
    """
    if class_weights is None:
        weights = torch.ones(len(target), device=target.device)
    else:
        weights = class_weights[target.argmax(1)]
    log_probs = F.log_softmax(logits.float(), dim=1)
    return (weights * -(target * log_probs).sum(1)).mean()
