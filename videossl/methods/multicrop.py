"""Multi-crop views for SwAV and DINO (Caron et al. 2020, 2021) on video and images.

On video each crop is a clip of ``data.num_frames`` frames at its own random time (rho clips, Feichtenhofer
et al., CVPR 2021): ``num_global`` large crops then ``num_local`` small crops. At T=1 they are the image
multi-crop of SwAV / DINO (2 x 224 px over 14-100% / 40-100% of the frame, 6-10 x 96 px over 5-40%).
"""
from __future__ import annotations

import torch
from omegaconf import DictConfig
from torch import nn

from ..data.sampling import RhoClipSampler, ViewSpec
from ..transforms.video import build_multicrop_transforms


def local_crop_size(crop_size: int, multiple: int = 8) -> int:
    """The small crop for a given large one: 96/224 of it (SwAV, DINO), rounded to ``multiple`` (ViT patches)."""
    return max(multiple, int(round(crop_size * 96 / 224 / multiple)) * multiple)


def multicrop_views(data_cfg: DictConfig, num_global: int = 2, num_local: int = 6, local_size: int = 0,
                    global_scale: tuple[float, float] = (0.4, 1.0),
                    local_scale: tuple[float, float] = (0.05, 0.4)) -> ViewSpec:
    """``num_global`` clips with transform ``"global"`` (``data.crop_size``) then ``num_local`` with ``"local"``
    (``local_size``; 0 picks ``local_crop_size``). Scales: DINO's (0.4, 1) / (0.05, 0.4)."""
    if num_global < 1 or num_global + num_local < 2:
        raise ValueError(f"multi-crop needs >= 1 global and >= 2 crops in all, got {num_global} + {num_local}")
    size = data_cfg.crop_size
    transforms = build_multicrop_transforms(size, local_size or local_crop_size(size), tuple(global_scale),
                                            tuple(local_scale))
    names = ("global",) * num_global + ("local",) * num_local
    sampler = RhoClipSampler(rho=len(names), num_frames=data_cfg.num_frames, stride=data_cfg.frame_stride,
                             transforms=names)
    return ViewSpec(sampler=sampler, transforms=transforms)


def forward_by_resolution(module: nn.Module, views: list[torch.Tensor]) -> list[torch.Tensor]:
    """Run ``module`` once per run of consecutive same-shape views (DINO's ``MultiCropWrapper``).

    views: ``[(B, C, T, H_v, W_v)]``; returns one ``(B, ...)`` output per view, in order.
    """
    outputs: list[torch.Tensor] = []
    start = 0
    while start < len(views):
        end = start + 1
        while end < len(views) and views[end].shape == views[start].shape:
            end += 1
        outputs.extend(module(torch.cat(views[start:end], dim=0)).chunk(end - start))
        start = end
    return outputs
