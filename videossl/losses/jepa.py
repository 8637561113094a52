"""V-JEPA's feature-prediction loss (Bardes et al., "Revisiting Feature Prediction for Learning Visual
Representations from Video", 2024, https://arxiv.org/abs/2404.08471, eq. 1 and sec. 3.1).

The predictor's outputs for the masked tokens regress the target encoder's features of those tokens, layer-normalised
over the feature dimension (no affine parameters) and detached, with an L1 loss. As facebookresearch/jepa
``app/vjepa/train.py`` computes it (``forward_target`` and ``loss_fn``): ``h = F.layer_norm(h, (D,))``, and per mask
set ``mean(|z - h| ** loss_exp) / loss_exp`` (``loss.loss_exp: 1.0`` in ``configs/pretrain/vitl16.yaml``), averaged
over the mask sets.
"""
from __future__ import annotations

from typing import Sequence

import torch
import torch.nn.functional as F


def layer_normalized_targets(features: torch.Tensor) -> torch.Tensor:
    """``(B, N, D)`` target-encoder tokens -> ``(B, N, D)`` normalised over ``D`` (LayerNorm without weight or bias),
    detached: the regression targets."""
    return F.layer_norm(features.detach(), (features.shape[-1],))


def jepa_regression_loss(predictions: Sequence[torch.Tensor], targets: Sequence[torch.Tensor],
                         loss_exp: float = 1.0) -> torch.Tensor:
    """Mean over mask sets of ``mean(|prediction - target| ** loss_exp) / loss_exp`` (1: L1, 2: half the MSE).

    predictions, targets: one ``(B, K_i, D)`` pair per mask set (``K_i`` predicted tokens per sample). The targets
    are detached. Every sample has the same ``K_i`` (the masks are cut to the smallest count over all processes), so
    the mean over processes of the per-process losses is the global-batch loss.
    """
    if len(predictions) != len(targets) or not predictions:
        raise ValueError(f"jepa_regression_loss: {len(predictions)} predictions for {len(targets)} targets")
    if loss_exp <= 0:
        raise ValueError(f"jepa_regression_loss: loss_exp must be > 0, got {loss_exp}")
    total = predictions[0].new_zeros((), dtype=torch.float32)
    for prediction, target in zip(predictions, targets):
        if prediction.shape != target.shape:
            raise ValueError(f"jepa_regression_loss: prediction {tuple(prediction.shape)} and target "
                             f"{tuple(target.shape)} differ")
        error = (prediction.float() - target.detach().float()).abs()
        total = total + (error if loss_exp == 1.0 else error.pow(loss_exp)).mean() / loss_exp
    return total / len(predictions)
