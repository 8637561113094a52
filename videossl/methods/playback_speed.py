"""Playback speed / pace prediction: the same kind of clip at several sampling rates, classify the rate
(Benaim et al., "SpeedNet", CVPR 2020; Wang et al., "Self-supervised Video Representation Learning by Pace
Prediction", ECCV 2020; Yao et al., "Video Playback Rate Perception", CVPR 2020).

One clip of ``data.num_frames`` frames taken every ``data.frame_stride * speed`` frames, ``speed`` drawn from
``speeds`` (pace prediction: 1, 2, 4, 8 -> 4 classes; ``PlaybackSpeedSampler``), a 3D backbone and a
classifier head. With ``num_clips > 1`` each sample gives several clips at independent speeds (more labels
per decode). Temporal by nature: ``data.num_frames >= 2`` (one clear error otherwise); the smoke test runs it
with 4 frames (``smoke_overrides``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from ..data.sampling import ClipSampler, SampledViews, VideoMeta, ViewSpec
from ..data.sampling_pretext import PlaybackSpeedSampler
from ..errors import UserError
from ..heads import ClassifierHead
from ..transforms.video import build_video_transform
from .base import Method, MethodConfig, StepInfo, concat_views, require_frames


@dataclass
class PlaybackSpeedConfig(MethodConfig):
    name: str = "playback_speed"
    speeds: list[int] = field(default_factory=lambda: [1, 2, 4, 8])  # pace prediction (Wang et al. 2020)
    num_clips: int = 1  # clips per sample, each at its own random speed
    hidden_dim: int = 256
    dropout: float = 0.5
    crop_scale_min: float = 0.5


class MultiSpeedSampler(ClipSampler):
    """``num_clips`` independent ``PlaybackSpeedSampler`` draws; ``speed_label`` is a list (one per clip)."""

    def __init__(self, num_clips: int, base: PlaybackSpeedSampler):
        self.num_clips, self.base = num_clips, base

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        draws = [self.base(meta, rng) for _ in range(self.num_clips)]
        views = [d.views[0]._replace(name=f"clip{k}") for k, d in enumerate(draws)]
        return SampledViews(views, {"speed_label": [d.targets["speed_label"] for d in draws]})


class PlaybackSpeed(Method):
    Config = PlaybackSpeedConfig
    smoke_overrides = ("data.num_frames=4",)  # one frame has no speed

    def __init__(self, cfg):
        super().__init__(cfg)
        require_frames("playback_speed", cfg.data.num_frames)
        h = self.hparams
        if len(h.speeds) < 2 or min(h.speeds) < 1 or len(set(h.speeds)) != len(h.speeds):
            raise UserError(f"method.speeds must be >= 2 distinct positive integers, got {list(h.speeds)}")
        self.head = ClassifierHead(self.backbone.num_features, len(h.speeds), h.hidden_dim, h.dropout)

    def views(self) -> ViewSpec:
        d, h = self.cfg.data, self.hparams
        base = PlaybackSpeedSampler(d.num_frames, d.frame_stride, tuple(h.speeds))
        sampler = base if h.num_clips == 1 else MultiSpeedSampler(h.num_clips, base)
        transform = build_video_transform("finetune", d.crop_size, scale=(h.crop_scale_min, 1.0))
        return ViewSpec(sampler=sampler, transforms={"clip": transform})

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        clips = batch["video"]  # num_clips x (B, C, T, H, W)
        labels = batch["speed_label"]  # (B,) or num_clips x (B,) (default collate of a list)
        labels = torch.cat(list(labels)) if isinstance(labels, (list, tuple)) else labels
        features = self.backbone(concat_views(clips))
        logits = self.head(features)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"loss": loss, "accuracy": accuracy.detach(), "embedding": features[: clips[0].shape[0]].detach()}
