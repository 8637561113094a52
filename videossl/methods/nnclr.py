"""NNCLR (Dwibedi et al., "With a Little Help from My Friends: Nearest-Neighbor Contrastive Learning of Visual
Representations", ICCV 2021) on video and images.

The positive of a view is the nearest neighbour of its projection in a support set (a queue of projections of
earlier global batches), contrasted against the other view's predictions of the global batch. On video the views
are rho clips at random times (Feichtenhofer et al., CVPR 2021).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..heads import PredictionHead, ProjectionHead
from ..losses.distributed import gather_no_grad
from ..losses.nnclr import nnclr_loss
from .base import Method, StepInfo, concat_views
from .views import RhoViewsConfig, rho_augment, rho_clip_views


@dataclass
class NNCLRConfig(RhoViewsConfig):
    name: str = "nnclr"
    num_clips: int = 2  # rho
    proj_hidden_dim: int = 512  # NNCLR: 2048 (3 layers, BN)
    proj_dim: int = 128  # NNCLR: 256
    pred_hidden_dim: int = 512  # NNCLR: 4096
    support_size: int = 4096  # NNCLR sec. 4.1: 98,304 (fig. 5 studies the size)
    temperature: float = 0.1  # NNCLR sec. 4.1: t = 0.1


class NNCLR(Method):
    Config = NNCLRConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self.projector = ProjectionHead(self.backbone.num_features, h.proj_hidden_dim, h.proj_dim, num_layers=3,
                                        last_batch_norm=True)
        self.predictor = PredictionHead(h.proj_dim, h.pred_hidden_dim)
        self.register_buffer("support", F.normalize(torch.randn(h.support_size, h.proj_dim), dim=1))
        self.register_buffer("support_ptr", torch.zeros((), dtype=torch.long))
        self.register_buffer("support_filled", torch.zeros((), dtype=torch.long))  # entries written so far
        self._pending: torch.Tensor | None = None

    def views(self):
        return rho_clip_views(self.cfg.data, self.hparams.num_clips, augment=rho_augment(self.hparams))

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        views = batch["video"]  # rho x (B, C, T, H, W)
        z_all = self.projector(self.backbone(concat_views(views)))
        z, p = z_all.chunk(len(views)), self.predictor(z_all).chunk(len(views))
        pairs = [(i, j) for i in range(len(views)) for j in range(i + 1, len(views))]
        t = self.hparams.temperature
        # Until the first batch is stored the support set is the batch itself (its own nearest neighbour).
        filled = int(self.support_filled)
        support = self.support[:filled] if filled else z[0].detach()
        loss = sum(nnclr_loss(z[i], z[j], p[i], p[j], support, t) for i, j in pairs) / len(pairs)
        self._pending = F.normalize(z[0].detach(), dim=1)  # NNCLR adds the first view's projections
        return {"loss": loss, "embedding": z[0].detach()}

    @torch.no_grad()
    def on_after_optimizer_step(self, step: StepInfo) -> None:
        if self._pending is None:
            return
        new = gather_no_grad(self._pending)  # the global batch: every process keeps the same support set
        size, n = self.support.shape[0], new.shape[0]
        index = (self.support_ptr + torch.arange(n, device=new.device)) % size
        self.support[index[-size:]] = new[-size:].to(self.support.dtype)
        self.support_ptr.copy_((self.support_ptr + n) % size)
        self.support_filled.copy_(torch.clamp(self.support_filled + n, max=size))
        self._pending = None
