"""DPC's 2D3D-ResNet (Han, Xie and Zisserman, "Video Representation Learning by Dense Predictive Coding",
ICCV-W 2019): a ResNet whose first two stages are 2D (1x3x3 kernels, time untouched) and last two 3D
(3x3x3, stride 2 in time and space), so a 5-frame block at 128 px becomes a ``(256, 2, 4, 4)`` map.

As in DPC, the last stage has 256 channels (not 512), features are 256-d for both depths. Taps ``stage1..4``.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import Backbone
from .weights import load_pretrained


class BasicBlock2d3d(nn.Module):
    """ResNet basic block with kernel ``(kt, 3, 3)``, ``kt`` = 1 (2D) or 3 (3D); stride ``(st, s, s)``."""

    def __init__(self, in_ch: int, out_ch: int, temporal_kernel: int, stride: tuple[int, int, int]):
        super().__init__()
        k, p = (temporal_kernel, 3, 3), (temporal_kernel // 2, 1, 1)
        self.conv1 = nn.Conv3d(in_ch, out_ch, k, stride=stride, padding=p, bias=False)
        self.bn1 = nn.BatchNorm3d(out_ch)
        self.conv2 = nn.Conv3d(out_ch, out_ch, k, padding=p, bias=False)
        self.bn2 = nn.BatchNorm3d(out_ch)
        self.relu = nn.ReLU(inplace=True)
        self.shortcut = nn.Identity()
        if in_ch != out_ch or stride != (1, 1, 1):
            self.shortcut = nn.Sequential(nn.Conv3d(in_ch, out_ch, 1, stride=stride, bias=False),
                                          nn.BatchNorm3d(out_ch))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.shortcut(x))


class ResNet2d3d(Backbone):
    """``(B, C, T, H, W)`` -> ``(B, 256)``; ``forward_tokens`` ``(B, 256, ceil(T/4), H/32, W/32)``."""

    tap_names = ("stage1", "stage2", "stage3", "stage4")

    def __init__(self, depth: int = 18, in_channels: int = 3, widths: tuple[int, ...] = (64, 128, 256, 256),
                 pretrained: str = ""):
        super().__init__()
        blocks = {18: (2, 2, 2, 2), 34: (3, 4, 6, 3)}
        if depth not in blocks:
            raise ValueError(f"ResNet2d3d: depth must be 18 or 34, got {depth}")
        self.in_channels = in_channels
        self.stem = nn.Sequential(
            nn.Conv3d(in_channels, widths[0], (1, 7, 7), stride=(1, 2, 2), padding=(0, 3, 3), bias=False),
            nn.BatchNorm3d(widths[0]),
            nn.ReLU(inplace=True),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        stages, prev = [], widths[0]
        for i, (width, n) in enumerate(zip(widths, blocks[depth])):
            is_3d = i >= 2
            stride = (2, 2, 2) if is_3d else ((1, 1, 1) if i == 0 else (1, 2, 2))
            layers = []
            for j in range(n):
                layers.append(BasicBlock2d3d(prev, width, 3 if is_3d else 1, stride if j == 0 else (1, 1, 1)))
                prev = width
            stages.append(nn.Sequential(*layers))
        self.stages = nn.ModuleList(stages)
        self.num_features = prev
        if pretrained:
            load_pretrained(self, pretrained)

    def _run(self, x: torch.Tensor, wanted: set[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = self.stem(self.to_memory_format(x))
        taps = {}
        for name, stage in zip(self.tap_names, self.stages):
            x = stage(x)
            if name in wanted:
                taps[name] = x
        return x, taps

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, set())[0]

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        return self._run(x, set(names or self.tap_names))[1]


def r2d3d_18(**kw) -> Backbone:
    return ResNet2d3d(depth=18, **kw)


def r2d3d_34(**kw) -> Backbone:
    return ResNet2d3d(depth=34, **kw)
