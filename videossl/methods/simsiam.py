"""SimSiam (Chen & He, "Exploring Simple Siamese Representation Learning", CVPR 2021) on video and images.

No negatives, no momentum encoder: a predictor and a stop-gradient on the target branch prevent collapse. On
video the two views are rho clips of one video at random times (Feichtenhofer et al., CVPR 2021); for rho > 2
every pair is used. At T=1 it is image SimSiam.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..heads import PredictionHead, ProjectionHead
from ..losses.simsiam import simsiam_loss
from .base import Method, StepInfo, concat_views
from .views import RhoViewsConfig, rho_augment, rho_clip_views


@dataclass
class SimSiamConfig(RhoViewsConfig):
    name: str = "simsiam"
    num_clips: int = 2  # rho
    proj_hidden_dim: int = 512  # SimSiam: 2048
    proj_dim: int = 512  # SimSiam: 2048, 3 layers with BN on the output
    pred_hidden_dim: int = 128  # SimSiam sec. 4.4: bottleneck 512 for 2048-d (a quarter of proj_dim)


class SimSiam(Method):
    Config = SimSiamConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self.projector = ProjectionHead(self.backbone.num_features, h.proj_hidden_dim, h.proj_dim, num_layers=3,
                                        last_batch_norm=True)
        self.predictor = PredictionHead(h.proj_dim, h.pred_hidden_dim)

    def views(self):
        return rho_clip_views(self.cfg.data, self.hparams.num_clips, augment=rho_augment(self.hparams))

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        views = batch["video"]  # rho x (B, C, T, H, W)
        z_all = self.projector(self.backbone(concat_views(views)))
        z, p = z_all.chunk(len(views)), self.predictor(z_all).chunk(len(views))
        pairs = [(i, j) for i in range(len(views)) for j in range(i + 1, len(views))]
        loss = sum(simsiam_loss(p[i], p[j], z[i], z[j]) for i, j in pairs) / len(pairs)
        return {"loss": loss, "embedding": z[0].detach()}
