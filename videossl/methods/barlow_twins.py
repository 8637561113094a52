"""Barlow Twins (Zbontar et al., "Barlow Twins: Self-Supervised Learning via Redundancy Reduction", ICML 2021)
on video and images: the cross-correlation of two views' projections is pushed to the identity. On video the
views are rho clips at random times (Feichtenhofer et al., CVPR 2021); for rho > 2 every pair is used."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..heads import ProjectionHead
from ..losses.barlow import barlow_twins_loss
from .base import Method, StepInfo, concat_views
from .views import RhoViewsConfig, rho_augment, rho_clip_views


@dataclass
class BarlowTwinsConfig(RhoViewsConfig):
    name: str = "barlow_twins"
    num_clips: int = 2  # rho
    proj_hidden_dim: int = 1024  # Barlow Twins: 8192 (3 layers, BN + ReLU between)
    proj_dim: int = 1024  # Barlow Twins: 8192; the loss improves with the dimension (fig. 4)
    lambda_offdiag: float = 5.1e-3  # Barlow Twins sec. 4: lambda = 5.1e-3


class BarlowTwins(Method):
    Config = BarlowTwinsConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self.projector = ProjectionHead(self.backbone.num_features, h.proj_hidden_dim, h.proj_dim, num_layers=3)

    def views(self):
        return rho_clip_views(self.cfg.data, self.hparams.num_clips, augment=rho_augment(self.hparams))

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        views = batch["video"]  # rho x (B, C, T, H, W)
        z = self.projector(self.backbone(concat_views(views))).float().chunk(len(views))
        pairs = [(i, j) for i in range(len(views)) for j in range(i + 1, len(views))]
        loss = sum(barlow_twins_loss(z[i], z[j], self.hparams.lambda_offdiag) for i, j in pairs) / len(pairs)
        return {"loss": loss, "embedding": z[0].detach()}
