"""Relative patch location (Doersch, Gupta and Efros, "Unsupervised Visual Representation Learning by Context
Prediction", ICCV 2015).

A crop (a clip at T>1, every frame cut alike) is cut into a 3x3 grid; a patch smaller than its cell is taken
at a random place in each cell (the paper's gaps and jitter, ``patch_fraction``). The backbone embeds all nine
patches (shared weights, the paper's late-fusion siamese network) and, for each of the 8 neighbours, the
concatenated (centre, neighbour) features predict where the neighbour lies (8 classes): eight labelled pairs
per sample from nine patch encodings.

Colour dropping (the paper's remedy for chromatic aberration, sec. 3.1): each patch keeps one random colour
channel and the other two are replaced by Gaussian noise (``color_drop``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..data.sampling import RandomClipSampler, ViewSpec
from ..heads import ClassifierHead
from ..transforms.puzzle import crop_tiles
from ..transforms.video import build_video_transform
from .base import Method, MethodConfig, StepInfo

CENTRE = 4
NEIGHBOURS = (0, 1, 2, 3, 5, 6, 7, 8)  # row-major cells around the centre; label k = NEIGHBOURS[k]


@dataclass
class RelativePatchConfig(MethodConfig):
    name: str = "relative_patch"
    patch_fraction: float = 0.75  # Doersch et al.: 96 px patches, gaps of ~half a patch plus up to 7 px jitter
    color_drop: bool = True  # Doersch et al. sec. 3.1: drop 2 of 3 colour channels per patch
    drop_noise_std: float = 0.01  # std of the noise replacing dropped channels (normalised units)
    hidden_dim: int = 512  # the paper's fc7 (4096 on two 4096-d fc6)
    dropout: float = 0.5
    crop_scale_min: float = 0.3


def drop_colours(pieces: torch.Tensor, noise_std: float) -> torch.Tensor:
    """``(N, C, ...)``: keep one random channel per piece, replace the others by Gaussian noise."""
    n, c = pieces.shape[:2]
    keep = torch.randint(0, c, (n,), device=pieces.device)
    mask = F.one_hot(keep, c).to(pieces.dtype).view(n, c, *([1] * (pieces.dim() - 2)))
    return pieces * mask + torch.randn_like(pieces) * noise_std * (1 - mask)


class RelativePatch(Method):
    Config = RelativePatchConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self.patch = max(1, int(cfg.data.crop_size // 3 * h.patch_fraction))
        self.head = ClassifierHead(2 * self.backbone.num_features, len(NEIGHBOURS), h.hidden_dim, h.dropout)

    def views(self) -> ViewSpec:
        d = self.cfg.data
        transform = build_video_transform("finetune", d.crop_size, scale=(self.hparams.crop_scale_min, 1.0))
        return ViewSpec(sampler=RandomClipSampler(d.num_frames, d.frame_stride), transforms={"clip": transform})

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        clips = batch["video"][0]  # (B, C, T, H, W)
        b = clips.shape[0]
        patches = crop_tiles(clips, (3, 3), self.patch).flatten(0, 1)  # (B*9, C, T, p, p)
        if self.hparams.color_drop:
            patches = drop_colours(patches, self.hparams.drop_noise_std)
        features = self.backbone(patches).view(b, 9, -1)  # (B, 9, D)
        centre = features[:, CENTRE:CENTRE + 1].expand(-1, len(NEIGHBOURS), -1)
        pairs = torch.cat([centre, features[:, list(NEIGHBOURS)]], dim=-1)  # (B, 8, 2D)
        logits = self.head(pairs.flatten(0, 1))
        labels = torch.arange(len(NEIGHBOURS), device=clips.device).repeat(b)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"loss": loss, "accuracy": accuracy.detach(), "embedding": features[:, CENTRE].detach()}
