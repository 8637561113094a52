"""SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020)
on video: rho >= 2 clips of one video at random times, each augmented independently (Feichtenhofer et al.,
"A Large-Scale Study on Unsupervised Spatiotemporal Representation Learning", CVPR 2021). At T=1 it is image
SimCLR: two crops of one frame."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..config import MethodConfig
from ..heads import ProjectionHead
from ..losses.contrastive import nt_xent_loss
from .base import Method, StepInfo, concat_views
from .views import rho_clip_views


@dataclass
class SimCLRConfig(MethodConfig):
    name: str = "simclr"
    num_clips: int = 2  # rho (Feichtenhofer et al. 2021 use rho = 2..4)
    temperature: float = 0.1  # SimCLR tab. 5: 0.1 with large batches; rho-SimCLR uses 0.1
    proj_hidden_dim: int = 512  # SimCLR: hidden = feature dim (2048 for ResNet-50)
    proj_dim: int = 128  # SimCLR sec. 4.2: 128-d projection output
    proj_layers: int = 2


class SimCLR(Method):
    Config = SimCLRConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self.projector = ProjectionHead(self.backbone.num_features, h.proj_hidden_dim, h.proj_dim, h.proj_layers)

    def views(self):
        return rho_clip_views(self.cfg.data, self.hparams.num_clips)

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        views = batch["video"]  # rho x (B, C, T, H, W)
        z = self.projector(self.backbone(concat_views(views))).chunk(len(views))  # rho x (B, proj_dim)
        pairs = [(i, j) for i in range(len(z)) for j in range(i + 1, len(z))]
        loss = sum(nt_xent_loss(z[i], z[j], self.hparams.temperature) for i, j in pairs) / len(pairs)
        return {"loss": loss, "embedding": z[0].detach()}
