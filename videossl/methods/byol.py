"""BYOL (Grill et al., "Bootstrap Your Own Latent", NeurIPS 2020) on video clips and images.

Online network (backbone, projector, predictor) predicts the projection of another view by a target network
(EMA of backbone and projector). The loss is symmetrised over the view pairs. On video the views are rho
clips at random times (Feichtenhofer et al., CVPR 2021, where rho-BYOL is the strongest).

The study's code (facebookresearch/SlowFast slowfast/models/contrastive.py, configs/contrastive_ssl/
BYOL_SlowR50_8x8.yaml) gives every clip the same MoCo v2 augmentation (``asymmetric_augment: false``) and runs the
clips SEQUENTIALly: each clip's prediction regresses the mean of the other clips' targets' losses and is
backpropagated on its own, so the rho losses add up (``sum_over_queries: true``: rho x the mean over ordered
pairs). Its loss -(p . k) / T with T = 0.5 on unit vectors has the gradient of our 2 - 2 p . k.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..heads import PredictionHead, ProjectionHead
from ..losses.regression import normalized_mse_loss
from ..nn.ema import EMATeacher
from ..nn.schedules import cosine_schedule
from .base import Method, StepInfo, concat_views
from .views import RhoViewsConfig, rho_augment, rho_clip_views


@dataclass
class BYOLConfig(RhoViewsConfig):
    name: str = "byol"
    num_clips: int = 2
    proj_hidden_dim: int = 512  # BYOL: 4096 for ResNet-50
    proj_dim: int = 128  # BYOL: 256
    pred_hidden_dim: int = 512  # BYOL: 4096
    momentum_base: float = 0.99  # BYOL sec. 3.2: tau_base = 0.996 (0.99 for short schedules / small batches)
    momentum_final: float = 1.0  # cosine-increased to 1 over training
    asymmetric_augment: bool = True  # BYOL's two pipelines (blur 1.0/0.1, solarize 0/0.2); SlowFast: one for all
    sum_over_queries: bool = False  # SlowFast SEQUENTIAL: the rho per-clip losses add up (loss x rho)


class BYOL(Method):
    Config = BYOLConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self.projector = ProjectionHead(self.backbone.num_features, h.proj_hidden_dim, h.proj_dim)
        self.predictor = PredictionHead(h.proj_dim, h.pred_hidden_dim)
        self.target = EMATeacher(nn.Sequential(self.backbone, self.projector))

    def views(self):
        h = self.hparams
        return rho_clip_views(self.cfg.data, h.num_clips, asymmetric=h.asymmetric_augment, augment=rho_augment(h))

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        views = batch["video"]  # rho x (B, C, T, H, W)
        x = concat_views(views)
        online = self.predictor(self.projector(self.backbone(x))).chunk(len(views))
        with torch.no_grad():
            target = self.target(x).chunk(len(views))
        pairs = [(i, j) for i in range(len(views)) for j in range(len(views)) if i != j]
        loss = sum(normalized_mse_loss(online[i], target[j]) for i, j in pairs) / len(pairs)
        if self.hparams.sum_over_queries:  # SlowFast: sum over the rho clips of each clip's mean over the others
            loss = loss * len(views)
        return {"loss": loss, "embedding": target[0]}

    def on_after_optimizer_step(self, step: StepInfo) -> None:
        h = self.hparams
        momentum = cosine_schedule(step.step, step.total_steps, h.momentum_base, h.momentum_final)
        self.target.update(nn.Sequential(self.backbone, self.projector), momentum)
