"""A tiny 3D ResNet sized for 2-core CPU tests and the quickstart (32-64 px clips, a few frames).

The layout of torchvision's ``r3d_18`` (Tran et al., "A Closer Look at Spatiotemporal Convolutions",
CVPR 2018) with one basic block per stage and narrow widths. Time is only downsampled in the last two
stages so that 4-8 frame clips keep temporal structure.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import Backbone
from .weights import load_pretrained


class BasicBlock3d(nn.Module):
    """Two 3x3x3 convolutions with a residual; ``stride`` is ``(t, s, s)``."""

    def __init__(self, in_ch: int, out_ch: int, stride: tuple[int, int, int]):
        super().__init__()
        self.conv1 = nn.Conv3d(in_ch, out_ch, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm3d(out_ch)
        self.conv2 = nn.Conv3d(out_ch, out_ch, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm3d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if in_ch != out_ch or stride != (1, 1, 1):
            self.shortcut = nn.Sequential(
                nn.Conv3d(in_ch, out_ch, 1, stride=stride, bias=False), nn.BatchNorm3d(out_ch)
            )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return self.relu(out + self.shortcut(x))


class TinyResNet3d(Backbone):
    """``(B, C, T, H, W)`` -> ``(B, widths[-1])``. Default widths (16, 32, 64, 128): ~0.9 M parameters."""

    def __init__(self, in_channels: int = 3, widths: tuple[int, ...] = (16, 32, 64, 128), pretrained: str = ""):
        super().__init__()
        self.in_channels = in_channels
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, widths[0], (3, 5, 5), stride=(1, 2, 2), padding=(1, 2, 2), bias=False),
            nn.BatchNorm3d(widths[0]),
            nn.ReLU(inplace=True),
        )
        stages, prev = [], widths[0]
        for i, width in enumerate(widths):
            t_stride = 2 if i >= len(widths) - 2 else 1
            s_stride = 1 if i == 0 else 2
            stages.append(BasicBlock3d(prev, width, (t_stride, s_stride, s_stride)))
            prev = width
        self.stages = nn.ModuleList(stages)
        self.num_features = prev
        self.tap_names = tuple(f"stage{i + 1}" for i in range(len(widths)))
        if pretrained:
            load_pretrained(self, pretrained)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> ``(B, D, T', H', W')``."""
        x = self.stem(self.to_memory_format(x))
        for stage in self.stages:
            x = stage(x)
        return x

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        wanted = set(names or self.tap_names)
        taps, x = {}, self.stem(self.to_memory_format(x))
        for name, stage in zip(self.tap_names, self.stages):
            x = stage(x)
            if name in wanted:
                taps[name] = x
        return taps
