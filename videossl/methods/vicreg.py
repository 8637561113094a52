"""VICReg (Bardes, Ponce & LeCun, "VICReg: Variance-Invariance-Covariance Regularization for Self-Supervised
Learning", ICLR 2022) on video and images. On video the views are rho clips at random times (Feichtenhofer et
al., CVPR 2021); for rho > 2 every pair is used."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..heads import ProjectionHead
from ..losses.vicreg import vicreg_loss
from .base import Method, StepInfo, concat_views
from .views import RhoViewsConfig, rho_augment, rho_clip_views


@dataclass
class VICRegConfig(RhoViewsConfig):
    name: str = "vicreg"
    num_clips: int = 2  # rho
    proj_hidden_dim: int = 1024  # VICReg: expander 8192-8192-8192
    proj_dim: int = 1024  # VICReg: 8192
    sim_coeff: float = 25.0  # VICReg sec. 4.1: lambda = 25
    std_coeff: float = 25.0  # mu = 25
    cov_coeff: float = 1.0  # nu = 1


class VICReg(Method):
    Config = VICRegConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self.projector = ProjectionHead(self.backbone.num_features, h.proj_hidden_dim, h.proj_dim, num_layers=3)

    def views(self):
        return rho_clip_views(self.cfg.data, self.hparams.num_clips, augment=rho_augment(self.hparams))

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        h = self.hparams
        views = batch["video"]  # rho x (B, C, T, H, W)
        z = self.projector(self.backbone(concat_views(views))).float().chunk(len(views))
        pairs = [(i, j) for i in range(len(views)) for j in range(i + 1, len(views))]
        loss = sum(vicreg_loss(z[i], z[j], h.sim_coeff, h.std_coeff, h.cov_coeff) for i, j in pairs) / len(pairs)
        return {"loss": loss, "embedding": z[0].detach()}
