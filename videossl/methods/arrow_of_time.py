"""Arrow of time (Wei et al., "Learning and Using the Arrow of Time", CVPR 2018): is a clip played forward or
backward?

Each sample draws ``num_candidates`` clips of one video, all forward or all reversed
(``ArrowOfTimeCandidatesSampler``). The artificial cues the paper warns about are removed before the network
sees anything:

- black borders (letterboxing): cut from the decoded frames by ``CropBlackBorders`` before the crop;
- static clips (nothing moves, so no arrow to see): candidates whose mean frame difference is below
  ``min_motion`` (normalised pixel units) are dropped;
- camera-motion-only clips (Wei et al. stabilise / drop them): candidates whose motion a global translation
  explains (``camera_only_motion``) are dropped.

Of the remaining candidates the one with the most motion is classified (a 3D backbone and a classifier head,
2 classes); a sample with no usable candidate is left out of the loss (``kept`` logs the fraction used).
Temporal by nature: ``data.num_frames`` must be >= 2 (one clear error otherwise); the smoke test runs it with
4 frames (``smoke_overrides``), since a single frame has no direction.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..data.sampling import ViewSpec
from ..data.sampling_pretext import ArrowOfTimeCandidatesSampler, CropBlackBorders
from ..heads import ClassifierHead
from ..transforms.motion import camera_only_motion, frame_motion
from ..transforms.video import build_video_transform
from .base import Method, MethodConfig, StepInfo, require_frames


@dataclass
class ArrowOfTimeConfig(MethodConfig):
    name: str = "arrow_of_time"
    num_candidates: int = 2  # clips drawn per sample to find one with real, non-camera motion
    min_motion: float = 0.02  # mean |frame difference| (normalised units, ~1.2/255 in pixels) below = static
    camera_ratio: float = 0.5  # aligned residual / raw difference below this = camera-only motion
    camera_max_shift: int = 2  # pixels searched for the global translation
    border_threshold: int = 16  # uint8 brightness below which a whole row / column is a black border
    hidden_dim: int = 256
    dropout: float = 0.5
    crop_scale_min: float = 0.5


class ArrowOfTime(Method):
    Config = ArrowOfTimeConfig
    smoke_overrides = ("data.num_frames=4",)  # a single frame has no arrow of time

    def __init__(self, cfg):
        super().__init__(cfg)
        require_frames("arrow_of_time", cfg.data.num_frames)
        h = self.hparams
        self.head = ClassifierHead(self.backbone.num_features, 2, h.hidden_dim, h.dropout)

    def views(self) -> ViewSpec:
        d, h = self.cfg.data, self.hparams
        # No flip-free requirement: a horizontal flip does not change the direction of time.
        transform = build_video_transform("finetune", d.crop_size, scale=(h.crop_scale_min, 1.0))
        sampler = ArrowOfTimeCandidatesSampler(h.num_candidates, d.num_frames, d.frame_stride)
        return ViewSpec(sampler=sampler, transforms={"clip": CropBlackBorders(transform, h.border_threshold)})

    @torch.no_grad()
    def select_candidates(self, candidates: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
        """``K x (B, C, T, H, W)`` -> the chosen clip ``(B, C, T, H, W)`` and a bool ``(B,)``: usable sample."""
        h = self.hparams
        stacked = torch.stack(candidates)  # (K, B, C, T, H, W)
        motion = torch.stack([frame_motion(c) for c in candidates])  # (K, B)
        camera = torch.stack([camera_only_motion(c, h.camera_max_shift, h.camera_ratio) for c in candidates])
        usable = (motion > h.min_motion) & ~camera
        best = torch.where(usable, motion, torch.full_like(motion, -1.0)).argmax(dim=0)  # (B,)
        chosen = stacked[best, torch.arange(stacked.shape[1], device=best.device)]
        return chosen, usable.any(dim=0)

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        clip, keep = self.select_candidates(batch["video"])
        features = self.backbone(clip)
        logits = self.head(features)
        labels = batch["order_label"]
        losses = F.cross_entropy(logits, labels, reduction="none")
        # Dropped samples still pass through the network (BN statistics); they weigh 0 in the loss.
        loss = (losses * keep).sum() / keep.sum().clamp(min=1)
        correct = (logits.argmax(1) == labels).float()
        accuracy = (correct * keep).sum() / keep.sum().clamp(min=1)
        return {"loss": loss, "accuracy": accuracy.detach(), "kept": keep.float().mean(),
                "embedding": features.detach()}
