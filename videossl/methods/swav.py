"""SwAV (Caron et al., "Unsupervised Learning of Visual Features by Contrasting Cluster Assignments", NeurIPS 2020)
on video and images.

Online clustering: each crop's normalised projection is scored against K prototypes; the codes of the global
crops come from Sinkhorn-Knopp equipartition over the global batch (optionally extended by a queue of earlier
projections for small batches) and are predicted from every other crop (swapped prediction). Multi-crop: 2
global + ``num_local`` small crops; on video each crop is a clip at its own random time (Feichtenhofer et al.,
CVPR 2021). The prototypes are frozen for the first ``freeze_prototypes_iters`` iterations (or
``freeze_prototypes_epochs`` epochs) and re-normalised after every step.

rho-SwAV as the study's code runs it (facebookresearch/SlowFast configs/contrastive_ssl/SwAV_Slow_R50_8x8.yaml,
slowfast/models/contrastive.py): 2 clips, no small crops (``num_local: 0``: the clips then take
``global_scale_min``-``global_scale_max`` crops and the ``color_jitter`` / ``gray_p`` options), a 3-layer MLP
with BN (``proj_num_layers: 3``), 1000 prototypes, no queue, prototype gradients dropped while the exact epoch
is <= 1 (``freeze_prototypes_epochs: 1``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..heads import ProjectionHead, Prototypes
from ..losses.swav import sinkhorn_knopp, swapped_prediction_loss
from .base import Method, MethodConfig, StepInfo
from .multicrop import forward_by_resolution, multicrop_views
from .views import rho_augment, rho_clip_views


@dataclass
class SwAVConfig(MethodConfig):
    name: str = "swav"
    num_global: int = 2  # SwAV: 2 x 224 px crops; their codes are the targets ("crops_for_assign")
    num_local: int = 6  # SwAV: 6 x 96 px crops
    local_size: int = 0  # 0: 96/224 of data.crop_size (rounded to 8 px)
    global_scale_min: float = 0.14  # SwAV multi-crop: 224 px over 14-100%
    global_scale_max: float = 1.0  # SlowFast SwAV: TRAIN_JITTER_SCALES_RELATIVE [0.2, 0.766]
    local_scale_min: float = 0.05  # 96 px over 5-14%
    local_scale_max: float = 0.14
    proj_hidden_dim: int = 512  # SwAV: 2048
    proj_dim: int = 128  # SwAV: 128
    proj_num_layers: int = 2  # SwAV: 2 (Linear-BN-ReLU-Linear); SlowFast SwAV_Slow_R50_8x8.yaml NUM_MLP_LAYERS: 3
    num_prototypes: int = 300  # SwAV: 3000 for ImageNet (roughly 3x the classes)
    temperature: float = 0.1  # SwAV sec. 4: t = 0.1
    epsilon: float = 0.05  # Sinkhorn regularisation (0.03 in the small-batch setting)
    sinkhorn_iterations: int = 3  # SwAV: 3
    queue_length: int = 0  # SwAV small batches (256): 3840 projections per crop; 0: no queue
    queue_start_epoch: int = 15  # SwAV: the queue is used from epoch 15
    freeze_prototypes_iters: int = 313  # SwAV: prototypes frozen during the first epoch (313 iterations)
    freeze_prototypes_epochs: float = 0.0  # > 0: frozen while the exact epoch is <= this (SlowFast: 1.0)
    # colour of the rho clips when num_local = 0 ([] / 0.2: the transforms' MoCo v2 defaults; SlowFast 0.6/0.15/0.2)
    color_jitter: list[float] = field(default_factory=list)  # [brightness, contrast, saturation, hue]
    gray_p: float = 0.2


class SwAV(Method):
    Config = SwAVConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self.projector = ProjectionHead(self.backbone.num_features, h.proj_hidden_dim, h.proj_dim,
                                        num_layers=h.proj_num_layers)
        self.prototypes = Prototypes(h.proj_dim, h.num_prototypes)
        # One queue per global crop of earlier (local to this process) normalised projections, as in SwAV's code.
        self.register_buffer("queue", torch.zeros(h.num_global, h.queue_length, h.proj_dim))
        self.register_buffer("queue_filled", torch.zeros((), dtype=torch.long))

    def views(self):
        h = self.hparams
        if h.num_local == 0:  # rho clips of one size (the video study's rho-SwAV)
            augment = rho_augment({"crop_scale": [h.global_scale_min, h.global_scale_max],
                                   "color_jitter": list(h.color_jitter), "gray_p": h.gray_p})
            return rho_clip_views(self.cfg.data, h.num_global, augment=augment)
        if list(h.color_jitter) or h.global_scale_max != 1.0:
            raise UserError("method.color_jitter / global_scale_max apply to num_local=0 (rho clips) only")
        return multicrop_views(self.cfg.data, h.num_global, h.num_local, h.local_size, (h.global_scale_min, 1.0),
                               (h.local_scale_min, h.local_scale_max))

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        h = self.hparams
        views = batch["video"]  # globals then locals, each (B, C, T, H_v, W_v)
        z = [F.normalize(e, dim=1) for e in forward_by_resolution(lambda x: self.projector(self.backbone(x)), views)]
        frozen = step.step < h.freeze_prototypes_iters or (
            h.freeze_prototypes_epochs > 0 and self.exact_epoch(step) <= h.freeze_prototypes_epochs)
        scores = [self.prototypes(e, frozen=frozen) for e in z]  # every crop: (B, K)
        use_queue = h.queue_length > 0 and step.epoch >= h.queue_start_epoch and int(self.queue_filled) > 0
        codes = []
        with torch.no_grad():
            for i in range(h.num_global):
                s = scores[i].detach()
                if use_queue:
                    queued = self.queue[i, : int(self.queue_filled)] @ self.prototypes.weight.T
                    s = torch.cat([queued.to(s.dtype), s])
                codes.append(sinkhorn_knopp(s, h.epsilon, h.sinkhorn_iterations)[-scores[i].shape[0]:])
            if h.queue_length > 0:
                self._enqueue([e.detach() for e in z[: h.num_global]])
        loss = swapped_prediction_loss(scores, codes, h.temperature)
        return {"loss": loss, "embedding": z[0].detach()}

    def exact_epoch(self, step: StepInfo) -> float:
        """Epochs done at ``step`` as a float (SlowFast's ``epoch_exact``)."""
        return step.step * float(self.cfg.train.epochs) / max(1, step.total_steps)

    @torch.no_grad()
    def _enqueue(self, projections: list[torch.Tensor]) -> None:
        """Shift the queue by the batch: newest first, as in SwAV's code."""
        n = projections[0].shape[0]
        for i, e in enumerate(projections):
            self.queue[i, n:] = self.queue[i, :-n].clone() if n < self.queue.shape[1] else self.queue[i, n:]
            self.queue[i, :n] = e[: self.queue.shape[1]].to(self.queue.dtype)
        self.queue_filled.copy_(torch.clamp(self.queue_filled + n, max=self.queue.shape[1]))

    @torch.no_grad()
    def on_after_optimizer_step(self, step: StepInfo) -> None:
        self.prototypes.normalize_()  # SwAV: prototypes are kept on the unit sphere
