"""Heads that turn backbone features ``(B, D)`` into embeddings: projection MLPs and predictors.

Split into a package when it grows past ~500 lines (DINO head, prototypes and decoders come with their methods).
"""
from __future__ import annotations

from torch import nn


def mlp(
    in_dim: int,
    hidden_dim: int,
    out_dim: int,
    num_layers: int = 2,
    batch_norm: bool = True,
    last_batch_norm: bool = False,
) -> nn.Sequential:
    """``(B, in_dim)`` -> ``(B, out_dim)``: ``num_layers`` linear layers with BN + ReLU between them.

    SimCLR (Chen et al. 2020): 2 layers, no BN on the output. BYOL (Grill et al. 2020): 2 layers, hidden 4096,
    output 256. SimSiam / Barlow Twins use 3 layers with BN on the output (``last_batch_norm=True``).
    """
    layers: list[nn.Module] = []
    dims = [in_dim] + [hidden_dim] * (num_layers - 1) + [out_dim]
    for i in range(num_layers):
        last = i == num_layers - 1
        followed_by_norm = (batch_norm and not last) or (last and last_batch_norm)
        layers.append(nn.Linear(dims[i], dims[i + 1], bias=not followed_by_norm))
        if not last:
            if batch_norm:
                layers.append(nn.BatchNorm1d(dims[i + 1]))
            layers.append(nn.ReLU(inplace=True))
        elif last_batch_norm:
            layers.append(nn.BatchNorm1d(dims[i + 1], affine=False))
    return nn.Sequential(*layers)


class ProjectionHead(nn.Sequential):
    """Projection MLP ``(B, D)`` -> ``(B, out_dim)`` (SimCLR's g(.), BYOL's projector)."""

    def __init__(self, in_dim: int, hidden_dim: int = 512, out_dim: int = 128, num_layers: int = 2,
                 batch_norm: bool = True, last_batch_norm: bool = False):
        super().__init__(*mlp(in_dim, hidden_dim, out_dim, num_layers, batch_norm, last_batch_norm))


class PredictionHead(nn.Sequential):
    """Predictor MLP ``(B, D)`` -> ``(B, D)`` (BYOL's q(.), SimSiam's h(.)): Linear-BN-ReLU-Linear."""

    def __init__(self, dim: int, hidden_dim: int = 512):
        super().__init__(*mlp(dim, hidden_dim, dim, num_layers=2))
