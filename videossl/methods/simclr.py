"""SimCLR (Chen et al., "A Simple Framework for Contrastive Learning of Visual Representations", ICML 2020)
on video: rho >= 2 clips of one video at random times, each augmented independently (Feichtenhofer et al.,
"A Large-Scale Study on Unsupervised Spatiotemporal Representation Learning", CVPR 2021). At T=1 it is image
SimCLR: two crops of one frame.

The study's code (facebookresearch/SlowFast slowfast/models/contrastive.py, contrastive_forward with
configs/contrastive_ssl/SimCLR_SlowR50_8x8.yaml, SEQUENTIAL) pairs consecutive clips only, (0, 1), (1, 2), ...,
(rho-2, rho-1), and backpropagates each pair's NT-Xent on its own, so the pair losses add up:
``pairs: consecutive`` and ``sum_over_pairs: true``. Its MLP head has no BN (CONTRASTIVE.BN_MLP unset):
``proj_batch_norm: false``."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..errors import UserError
from ..heads import ProjectionHead
from ..losses.contrastive import nt_xent_loss
from .base import Method, StepInfo, concat_views
from .views import RhoViewsConfig, rho_augment, rho_clip_views

PAIRINGS = ("all", "consecutive")


@dataclass
class SimCLRConfig(RhoViewsConfig):
    name: str = "simclr"
    num_clips: int = 2  # rho (SlowFast projects/contrastive_ssl README: rho 2 and 4; SimCLR_SlowR50_8x8.yaml: 4)
    temperature: float = 0.1  # SimCLR tab. 5: 0.1 with large batches; SlowFast SimCLR_SlowR50_8x8.yaml T: 0.1
    proj_hidden_dim: int = 512  # SimCLR: hidden = feature dim (2048 for ResNet-50)
    proj_dim: int = 128  # SimCLR sec. 4.2: 128-d projection output
    proj_layers: int = 2  # SlowFast SimCLR_SlowR50_8x8.yaml NUM_MLP_LAYERS: 3
    proj_batch_norm: bool = True  # BN in the hidden layers (SimCLR's code); SlowFast's SimCLR head has none
    pairs: str = "all"  # "all" unordered clip pairs | "consecutive" (0,1), (1,2), ... as SlowFast's SEQUENTIAL
    sum_over_pairs: bool = False  # False: mean over the pairs; True: their sum (SlowFast)


class SimCLR(Method):
    Config = SimCLRConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if h.pairs not in PAIRINGS:
            raise UserError(f"method.pairs must be one of {', '.join(PAIRINGS)}, got {h.pairs!r}")
        self.projector = ProjectionHead(self.backbone.num_features, h.proj_hidden_dim, h.proj_dim, h.proj_layers,
                                        batch_norm=h.proj_batch_norm)

    def views(self):
        return rho_clip_views(self.cfg.data, self.hparams.num_clips, augment=rho_augment(self.hparams))

    def clip_pairs(self, num_views: int) -> list[tuple[int, int]]:
        """The clip pairs whose NT-Xent is taken: all unordered pairs, or SlowFast's consecutive ones."""
        if self.hparams.pairs == "consecutive":
            return [(i, i + 1) for i in range(num_views - 1)]
        return [(i, j) for i in range(num_views) for j in range(i + 1, num_views)]

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        views = batch["video"]  # rho x (B, C, T, H, W)
        z = self.projector(self.backbone(concat_views(views))).chunk(len(views))  # rho x (B, proj_dim)
        pairs = self.clip_pairs(len(z))
        loss = sum(nt_xent_loss(z[i], z[j], self.hparams.temperature) for i, j in pairs)
        loss = loss if self.hparams.sum_over_pairs else loss / len(pairs)
        return {"loss": loss, "embedding": z[0].detach()}
