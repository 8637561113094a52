"""Shuffle and Learn (Misra, Zitnick and Hebert, "Shuffle and Learn: Unsupervised Learning using Temporal Order
Verification", ECCV 2016).

Temporal order verification: is a triplet of frames (b, c, d) in the right order, or is it (b, a, d) /
(b, e, d) with a frame from outside the interval? Tuples come from HIGH-MOTION windows: the sampler draws
``num_candidates`` windows of five ordered frames (``ShuffleAndLearnCandidatesSampler``, each window one
view with one crop), the method measures each window's motion by frame differences (``frame_motion``; the
paper uses optical flow magnitude) and builds the tuple from the window that moves most. Each frame goes
through the backbone (frame-wise: ``tiny_r2d`` / ``resnet18``, as the paper's CaffeNet, or a video backbone
on ``T=1`` clips); the three features are concatenated (fc7) and classified correct / shuffled (fc8).

A frame task: views are single frames whatever ``data.num_frames`` is. ``snippet_frames`` > 1 makes each of the
five a short snippet for 3D backbones (``shuffle_learn_synthetic_tiny3d``): single frames show no motion, and
the synthetic classes are motions.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..data.sampling import ViewSpec
from ..data.sampling_pretext import ShuffleAndLearnCandidatesSampler
from ..heads import ClassifierHead
from ..transforms.motion import frame_motion
from ..transforms.video import build_video_transform
from .base import Method, MethodConfig, StepInfo


@dataclass
class ShuffleAndLearnConfig(MethodConfig):
    name: str = "shuffle_learn"
    num_candidates: int = 4  # windows scored for motion per sample
    window_frames: int = 30  # Misra et al.: tuples from windows of ~1 s (30 fps)
    positive_prob: float = 0.5  # Misra et al.: 25% positives; 0.5 keeps the classes balanced
    hidden_dim: int = 512
    dropout: float = 0.5
    crop_scale_min: float = 0.5
    # 1: the paper's single frames. k > 1: each of the five frames is a k-frame snippet (``tuple_element``), for a
    # video backbone on residual frames (not in the paper; the verification task is unchanged).
    snippet_frames: int = 1
    snippet_stride: int = 1


# Positions in the 5-frame window (a, b, c, d, e) of the positive and the two kinds of negative triplet.
POSITIVE = (1, 2, 3)  # (b, c, d)
NEGATIVES = ((1, 0, 3), (1, 4, 3))  # (b, a, d), (b, e, d)


class ShuffleAndLearn(Method):
    Config = ShuffleAndLearnConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self.head = ClassifierHead(3 * self.backbone.num_features, 2, h.hidden_dim, h.dropout)

    def views(self) -> ViewSpec:
        h = self.hparams
        transform = build_video_transform("finetune", self.cfg.data.crop_size, scale=(h.crop_scale_min, 1.0))
        sampler = ShuffleAndLearnCandidatesSampler(h.num_candidates, h.window_frames, h.positive_prob,
                                                   h.snippet_frames, h.snippet_stride)
        return ViewSpec(sampler=sampler, transforms={"tuple": transform})

    @staticmethod
    @torch.no_grad()
    def build_triplets(candidates: list[torch.Tensor], labels: torch.Tensor, sides: torch.Tensor,
                       snippet_frames: int = 1) -> torch.Tensor:
        """``K x (B, C, 5 k, H, W)`` windows (five elements of k frames) -> triplets ``(B, C, 3, k, H, W)`` from each
        sample's highest-motion window, motion measured on the five elements' first frames."""
        k = snippet_frames
        stacked = torch.stack([c.unflatten(2, (5, k)) for c in candidates])  # (K, B, C, 5, k, H, W)
        best = torch.stack([frame_motion(c[:, :, :, 0]) for c in stacked]).argmax(dim=0)  # (B,)
        b = stacked.shape[1]
        windows = stacked[best, torch.arange(b, device=best.device)]  # (B, C, 5, k, H, W)
        table = torch.tensor([NEGATIVES[0], NEGATIVES[1], POSITIVE], device=windows.device)
        order = table[torch.where(labels.bool(), torch.full_like(sides, 2), sides)]  # (B, 3)
        index = order.view(b, 1, 3, 1, 1, 1).expand(-1, windows.shape[1], -1, *windows.shape[-3:])
        return torch.gather(windows, 2, index)

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        labels = batch["order_label"]
        triplets = self.build_triplets(batch["video"], labels, batch["negative_side"],
                                       self.hparams.snippet_frames)  # (B, C, 3, k, H, W)
        b, c = triplets.shape[:2]
        elements = triplets.transpose(1, 2).reshape(b * 3, c, *triplets.shape[3:])  # (3B, C, k, H, W)
        features = self.backbone(elements).view(b, 3, -1)  # (B, 3, D)
        logits = self.head(features.flatten(1))
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"loss": loss, "accuracy": accuracy.detach(), "embedding": features[:, 0].detach()}
