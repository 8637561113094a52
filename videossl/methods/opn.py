"""Order Prediction Network (Lee et al., "Unsupervised Representation Learning by Sorting Sequences", ICCV 2017).

Four frames of a short window are shown in a shuffled order (``OPNSampler``); a sequence and its reverse are
one class, so there are 4!/2 = 12 classes. Each frame goes through the backbone (frame-wise: ``tiny_r2d`` /
``resnet18``, or any video backbone on ``T=1`` clips), the features of every pair of frames are fused
(``PairwiseFusionHead``: OPN's pairwise fc7) and the six pair features classify the order (fc8).

OPN's low-level-cue suppression is kept: spatial jittering (each frame its own random crop, the sampler's
per-frame views) and channel splitting (each frame shown as one random colour channel copied to all three,
``channel_split``). A frame task: the views are single frames whatever ``data.num_frames`` is (which then only
sets the clip length the encoder is evaluated on). ``snippet_frames`` > 1 turns each frame into a short snippet
starting there, for 3D backbones (``opn_synthetic_tiny3d``): the order task is the same, but each element
then carries its own motion, which single frames cannot show.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..data.sampling import ViewSpec
from ..data.sampling_pretext import OPNSampler
from ..heads import PairwiseFusionHead
from ..transforms.video import build_video_transform
from .base import Method, MethodConfig, StepInfo, concat_views


@dataclass
class OPNConfig(MethodConfig):
    name: str = "opn"
    window_frames: int = 30  # OPN: frames drawn from high-motion windows of a few tens of frames
    pair_dim: int = 512  # OPN: pairwise fc7 of 512 units
    dropout: float = 0.5
    channel_split: bool = True  # OPN sec. 3.3: channel splitting against chromatic cues
    crop_scale_min: float = 0.5
    # 1: OPN's single frames. k > 1: each element is a k-frame snippet (``tuple_element``), for a video backbone
    # on residual frames, which then sees each element's motion (a single frame has none: ``input_transform:
    # residual`` needs T >= 2). Not in the paper; the order task and its 12 classes are unchanged.
    snippet_frames: int = 1
    snippet_stride: int = 1


def split_channels(frames: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)``: each clip shows one random channel copied to all C (OPN's channel splitting)."""
    b, c = frames.shape[:2]
    pick = torch.randint(0, c, (b,), device=frames.device)
    one = frames[torch.arange(b, device=frames.device), pick]  # (B, T, H, W)
    return one.unsqueeze(1).expand(-1, c, -1, -1, -1)


class OPN(Method):
    Config = OPNConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self.sampler = OPNSampler(h.window_frames, 4, h.snippet_frames, h.snippet_stride)
        self.head = PairwiseFusionHead(self.backbone.num_features, 4, OPNSampler.num_classes, h.pair_dim, h.dropout)

    def views(self) -> ViewSpec:
        transform = build_video_transform("finetune", self.cfg.data.crop_size, scale=(self.hparams.crop_scale_min, 1.0))
        return ViewSpec(sampler=self.sampler, transforms={"frame": transform})

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        frames = batch["video"]  # 4 x (B, C, k, H, W) in the shown order (k = snippet_frames, 1 in the paper)
        b = frames[0].shape[0]
        x = concat_views(frames)
        if self.hparams.channel_split:
            x = split_channels(x)
        features = self.backbone(x).view(len(frames), b, -1).transpose(0, 1)  # (B, 4, D)
        logits = self.head(features)
        labels = batch["order_label"]
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"loss": loss, "accuracy": accuracy.detach(), "embedding": features[:, 0].detach()}
