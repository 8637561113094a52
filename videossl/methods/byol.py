"""BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020) on video clips and images.

Online network (backbone, projector, predictor) predicts the projection of another view by a target network
(EMA of backbone and projector). The loss is symmetrised over the view pairs. On video the views are rho
clips at random times (Feichtenhofer et al., CVPR 2021, where rho-BYOL is the strongest).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import MethodConfig
from ..engine.ema import EMATeacher
from ..engine.schedules import cosine_schedule
from ..heads import PredictionHead, ProjectionHead
from ..losses.regression import normalized_mse_loss
from .base import Method, StepInfo, concat_views
from .views import rho_clip_views


@dataclass
class BYOLConfig(MethodConfig):
    name: str = "byol"
    num_clips: int = 2
    proj_hidden_dim: int = 512  # BYOL: 4096 for ResNet-50
    proj_dim: int = 128  # BYOL: 256
    pred_hidden_dim: int = 512  # BYOL: 4096
    momentum_base: float = 0.99  # BYOL sec. 3.2: tau_base = 0.996 (0.99 for short schedules / small batches)
    momentum_final: float = 1.0  # cosine-increased to 1 over training


class BYOL(Method):
    Config = BYOLConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self.projector = ProjectionHead(self.backbone.num_features, h.proj_hidden_dim, h.proj_dim)
        self.predictor = PredictionHead(h.proj_dim, h.pred_hidden_dim)
        self.target = EMATeacher(nn.Sequential(self.backbone, self.projector))

    def views(self):
        return rho_clip_views(self.cfg.data, self.hparams.num_clips, asymmetric=True)

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        views = batch["video"]  # rho x (B, C, T, H, W)
        x = concat_views(views)
        online = self.predictor(self.projector(self.backbone(x))).chunk(len(views))
        with torch.no_grad():
            target = self.target(x).chunk(len(views))
        pairs = [(i, j) for i in range(len(views)) for j in range(len(views)) if i != j]
        loss = sum(normalized_mse_loss(online[i], target[j]) for i, j in pairs) / len(pairs)
        return {"loss": loss, "embedding": target[0]}

    def on_after_optimizer_step(self, step: StepInfo) -> None:
        h = self.hparams
        momentum = cosine_schedule(step.step, step.total_steps, h.momentum_base, h.momentum_final)
        self.target.update(nn.Sequential(self.backbone, self.projector), momentum)
