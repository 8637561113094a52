"""pytorchvideo's model-zoo networks behind the backbone contract, built with ``pretrained=False``.

The pytorchvideo ``Net`` is kept under ``self.model`` with its classification head cut off, so the
state dict keys of a pytorchvideo checkpoint (``model_state`` of the hub files) load unchanged.

- ``slow_r50``: the Slow pathway of Feichtenhofer et al., "SlowFast Networks", ICCV 2019. 2048-d.
- ``slowfast_r50``: SlowFast, alpha=4 (the fast pathway sees 4x the frames of the slow one), beta=1/8.
  Input is the fast clip ``(B, C, T, H, W)``; the slow pathway takes every 4th frame. 2304-d (2048+256).
- ``x3d_xs/s/m``: Feichtenhofer, "X3D: Expanding Architectures for Efficient Video Recognition", CVPR 2020.
  Features are the 432-channel expansion before X3D's global pool (the 2048-d ``post_conv`` of the
  classifier is left out, its pool kernel fixes the input size).
- ``csn_r101``: Tran et al., "Video Classification with Channel-Separated Convolutional Networks", ICCV 2019.
- ``r2plus1d_r50``: the bottleneck R(2+1)D-50 of pytorchvideo's model zoo. 2048-d.
"""
from __future__ import annotations

import torch
from torch import nn

from .base import Backbone, replace_input_conv
from .weights import load_pretrained

_NUM_FEATURES = {"slow_r50": 2048, "csn_r101": 2048, "r2plus1d_r50": 2048, "x3d_xs": 432, "x3d_s": 432,
                 "x3d_m": 432, "slowfast_r50": 2304}


def _build(arch: str) -> nn.Module:
    from pytorchvideo.models import hub  # heavy import kept local; never pytorchvideo.transforms

    return getattr(hub, arch)(pretrained=False)


class PytorchvideoResNet(Backbone):
    """``slow_r50``, ``x3d_*``, ``csn_r101``, ``r2plus1d_r50``: ``(B, C, T, H, W)`` -> ``(B, D)``.

    ``forward_tokens``: the last stage ``(B, D, t, h, w)`` (X3D: after its 1x1x1 expansion to 432).
    Taps ``stage1..4``.
    """

    library_format = "pytorchvideo"
    tap_names = ("stage1", "stage2", "stage3", "stage4")

    def __init__(self, arch: str = "slow_r50", in_channels: int = 3, pretrained: str = ""):
        super().__init__()
        self.arch, self.in_channels = arch, in_channels
        self.model = _build(arch)
        replace_input_conv(self.model, in_channels)
        head = self.model.blocks[-1]
        if arch.startswith("x3d"):
            # keep only the expansion conv of X3D's ProjectedPool: ``blocks.5.pool.pre_{conv,norm,act}``
            projected = head.pool
            projected.pool = projected.post_conv = projected.post_act = None
            head.proj = head.dropout = head.activation = head.output_pool = None
        else:
            self.model.blocks = self.model.blocks[:-1]
        self.num_features = _NUM_FEATURES[arch]
        if pretrained:
            load_pretrained(self, pretrained)

    def _run(self, x: torch.Tensor, wanted: set[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = self.model.blocks[0](self.to_memory_format(x))
        taps = {}
        for i in range(1, 5):
            x = self.model.blocks[i](x)
            if f"stage{i}" in wanted:
                taps[f"stage{i}"] = x
        if self.arch.startswith("x3d"):
            p = self.model.blocks[5].pool
            x = p.pre_act(p.pre_norm(p.pre_conv(x)))
        return x, taps

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, set())[0]

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        return self._run(x, set(names or self.tap_names))[1]


class PytorchvideoSlowFast(Backbone):
    """``slowfast_r50``: fast clip ``(B, C, T, H, W)`` (T divisible by 4) -> ``(B, 2304)``.

    ``forward_tokens``: slow features ``(B, 2048, T/4, h, w)`` and fast features averaged to T/4 frames
    ``(B, 256, T/4, h, w)``, concatenated on channels: ``(B, 2304, T/4, H/32, W/32)``. Taps ``stage1..4``
    give the same slow+fast concatenation after each stage.
    """

    library_format = "pytorchvideo"
    tap_names = ("stage1", "stage2", "stage3", "stage4")
    alpha = 4  # SlowFast's frame-rate ratio between the pathways (Feichtenhofer et al., 2019)

    def __init__(self, in_channels: int = 3, pretrained: str = ""):
        super().__init__()
        self.in_channels = in_channels
        self.model = _build("slowfast_r50")
        for pathway in self.model.blocks[0].multipathway_blocks:
            replace_input_conv(pathway, in_channels)
        self.model.blocks = self.model.blocks[:5]
        self.num_features = 2304
        if pretrained:
            load_pretrained(self, pretrained)

    def _concat(self, slow: torch.Tensor, fast: torch.Tensor) -> torch.Tensor:
        fast = nn.functional.adaptive_avg_pool3d(fast, slow.shape[2:])
        return torch.cat([slow, fast], dim=1)

    def _run(self, x: torch.Tensor, wanted: set[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if x.shape[2] % self.alpha:
            raise ValueError(f"slowfast_r50 needs T divisible by {self.alpha}, got T={x.shape[2]}")
        x = self.to_memory_format(x)
        pathways = [x[:, :, :: self.alpha].contiguous(), x]
        pathways = self.model.blocks[0](pathways)
        taps = {}
        for i in range(1, 5):
            pathways = self.model.blocks[i](pathways)
            if f"stage{i}" in wanted:
                taps[f"stage{i}"] = self._concat(*pathways)
        return self._concat(*pathways), taps

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, set())[0]

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        return self._run(x, set(names or self.tap_names))[1]


def slow_r50(**kw) -> Backbone:
    return PytorchvideoResNet("slow_r50", **kw)


def x3d_xs(**kw) -> Backbone:
    return PytorchvideoResNet("x3d_xs", **kw)


def x3d_s(**kw) -> Backbone:
    return PytorchvideoResNet("x3d_s", **kw)


def x3d_m(**kw) -> Backbone:
    return PytorchvideoResNet("x3d_m", **kw)


def csn_r101(**kw) -> Backbone:
    return PytorchvideoResNet("csn_r101", **kw)


def r2plus1d_r50(**kw) -> Backbone:
    return PytorchvideoResNet("r2plus1d_r50", **kw)
