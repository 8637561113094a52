"""Rotation prediction (Gidaris, Singh and Komodakis, "Unsupervised Representation Learning by Predicting Image
Rotations", ICLR 2018), and its video form, 3D rotation of all frames (Jing and Tian, "Self-supervised
Spatiotemporal Feature Learning via Video Rotation Prediction", 2018, "3DRotNet").

One clip of ``data.num_frames`` frames (an image at T=1) is rotated by 0, 90, 180 and 270 degrees in the image
plane, every frame alike; the backbone and a classifier head predict the rotation (4 classes). As RotNet, all
four rotations of each sample are in the batch (``all_rotations``; else one random rotation per sample).
Square crops keep the four rotations the same shape.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..data.sampling import RandomClipSampler, ViewSpec
from ..heads import ClassifierHead
from ..transforms.video import build_video_transform
from .base import Method, MethodConfig, StepInfo


@dataclass
class RotationConfig(MethodConfig):
    name: str = "rotation"
    all_rotations: bool = True  # RotNet sec. 3: the 4 rotated copies of each image in one batch
    hidden_dim: int = 256  # RotNet classifies from conv features; a small MLP here
    dropout: float = 0.0
    crop_scale_min: float = 0.3


def rotate_clips(clips: torch.Tensor, quarter_turns: torch.Tensor) -> torch.Tensor:
    """Rotate each ``(C, T, H, W)`` clip of ``(B, C, T, H, W)`` by ``quarter_turns[b] * 90`` degrees
    counter-clockwise in the (H, W) plane (square H = W)."""
    return torch.stack([torch.rot90(c, int(k), dims=(2, 3)) for c, k in zip(clips, quarter_turns)])


class Rotation(Method):
    Config = RotationConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self.head = ClassifierHead(self.backbone.num_features, 4, h.hidden_dim, h.dropout)

    def views(self) -> ViewSpec:
        d = self.cfg.data
        transform = build_video_transform("finetune", d.crop_size, scale=(self.hparams.crop_scale_min, 1.0))
        return ViewSpec(sampler=RandomClipSampler(d.num_frames, d.frame_stride), transforms={"clip": transform})

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        clips = batch["video"][0]  # (B, C, T, H, W)
        b = clips.shape[0]
        if self.hparams.all_rotations:
            labels = torch.arange(4, device=clips.device).repeat_interleave(b)
            clips = clips.repeat(4, 1, 1, 1, 1)
        else:
            labels = torch.randint(0, 4, (b,), device=clips.device)
        features = self.backbone(rotate_clips(clips, labels))
        logits = self.head(features)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"loss": loss, "accuracy": accuracy.detach(), "embedding": features[:b].detach()}
