"""Video clip order prediction (Xu et al., "Self-supervised Spatiotemporal Learning via Video Clip Order
Prediction", CVPR 2019).

Three clips of ``data.num_frames`` frames (VCOP: 16 frames, 8 frames apart) are cut from one video and shuffled
(``VCOPSampler``); a shared 3D backbone embeds each clip, every pair of clip features is fused by a shared layer
(512-d) and the three pair features predict which of the 3! = 6 orders was shown (``PairwiseFusionHead``).
Each clip gets its own random crop and flip, as in VCOP's code. At ``data.num_frames=1`` the clips are single
frames and the task is frame-order prediction (still meaningful, no special path).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..data.sampling import ViewSpec
from ..data.sampling_pretext import VCOPSampler
from ..errors import UserError
from ..heads import PairwiseFusionHead
from ..transforms.video import build_video_transform
from .base import Method, MethodConfig, StepInfo, concat_views


@dataclass
class VCOPConfig(MethodConfig):
    name: str = "vcop"
    num_clips: int = 3  # VCOP: tuple length 3 (6 classes); 4 clips (24 classes) is harder and worse in their tab. 1
    interval: int = 8  # VCOP: 8 frames between clips
    pair_dim: int = 512  # VCOP: 512-d pairwise fusion layer
    dropout: float = 0.5  # VCOP: dropout 0.5 before the classifier
    crop_scale_min: float = 0.5


class VCOP(Method):
    Config = VCOPConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if not 2 <= h.num_clips <= 5:
            raise UserError(f"method.num_clips must be 2..5 (num_clips! classes), got {h.num_clips}")
        self.sampler = VCOPSampler(h.num_clips, cfg.data.num_frames, h.interval, cfg.data.frame_stride)
        self.head = PairwiseFusionHead(self.backbone.num_features, h.num_clips, len(self.sampler.permutations),
                                       h.pair_dim, h.dropout)

    def views(self) -> ViewSpec:
        transform = build_video_transform("finetune", self.cfg.data.crop_size, scale=(self.hparams.crop_scale_min, 1.0))
        return ViewSpec(sampler=self.sampler, transforms={"clip": transform})

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        clips = batch["video"]  # num_clips x (B, C, T, H, W), in the shuffled order
        b = clips[0].shape[0]
        features = self.backbone(concat_views(clips)).view(len(clips), b, -1).transpose(0, 1)  # (B, N, D)
        logits = self.head(features)
        labels = batch["order_label"]
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"loss": loss, "accuracy": accuracy.detach(), "embedding": features[:, 0].detach()}
