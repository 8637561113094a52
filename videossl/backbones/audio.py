"""Audio towers: a ResNet-18 on log-mel spectrograms and the CPC waveform encoder.

- ``audio_resnet18``: torchvision's ResNet-18 with a 1-channel stem on ``(B, 1, n_mels, frames)``, the
  usual audio tower of audio-visual SSL (e.g. AVID, Morgado et al., CVPR 2021; XDC, Alwassel et al.,
  NeurIPS 2020). 512-d; ``forward_tokens`` ``(B, 512, n_mels/32, frames/32)``; taps ``stage1..4``.
- ``cpc_encoder``: van den Oord et al., "Representation Learning with Contrastive Predictive Coding",
  2018: five strided 1D convolutions (strides 5, 4, 2, 2, 2 = 160 samples per step at 16 kHz, 10 ms;
  kernels 10, 8, 4, 4, 4; 512 channels; ReLU) then a GRU context network (256-d).
"""
from __future__ import annotations

import torch
import torchvision
from torch import nn

from .base import Backbone, replace_input_conv
from .framewise import _narrow_resnet
from .weights import load_pretrained


class AudioResNet(Backbone):
    """2D ResNet-18 on log-mel: ``(B, C, n_mels, frames)`` -> ``(B, 8 * width)``."""

    modality = "audio"
    library_format = "torchvision"
    tap_names = ("stage1", "stage2", "stage3", "stage4")

    def __init__(self, in_channels: int = 1, width: int = 64, pretrained: str = ""):
        super().__init__()
        self.in_channels = in_channels
        self.model = torchvision.models.resnet18(weights=None)
        if width != 64:
            _narrow_resnet(self.model, width)
        replace_input_conv(self.model, in_channels)
        self.num_features = self.model.fc.in_features
        self.model.fc = nn.Identity()
        if pretrained:
            load_pretrained(self, pretrained)

    def _run(self, x: torch.Tensor, wanted: set[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        if x.dim() != 4:
            raise ValueError(f"AudioResNet expects log-mel (B, 1, n_mels, frames), got shape {tuple(x.shape)}")
        m = self.model
        x = m.maxpool(m.relu(m.bn1(m.conv1(self.to_memory_format(x)))))
        taps = {}
        for i, layer in enumerate([m.layer1, m.layer2, m.layer3, m.layer4]):
            x = layer(x)
            if f"stage{i + 1}" in wanted:
                taps[f"stage{i + 1}"] = x
        return x, taps

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, set())[0]

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        return self._run(x, set(names or self.tap_names))[1]


class CPCEncoder(Backbone):
    """CPC on raw waveform ``(B, 1, samples)``.

    - ``encode(x)``: ``z`` ``(B, L, width)`` with ``L = samples // 160`` (one step per 10 ms at 16 kHz).
    - ``context(z)``: GRU over ``z`` -> ``c`` ``(B, L, context_dim)`` (causal: ``c_t`` sees ``z_{<=t}``).
    - ``forward_tokens``: ``c`` as ``(B, context_dim, L)``; ``forward_features``: mean of ``c`` over time.
    Taps ``stage1..5`` (the convolutions, ``(B, width, L_i)``) and ``context``.
    """

    modality = "audio"
    strides = (5, 4, 2, 2, 2)  # CPC (van den Oord et al., 2018), total stride 160
    kernels = (10, 8, 4, 4, 4)

    def __init__(self, in_channels: int = 1, width: int = 512, context_dim: int = 256, pretrained: str = ""):
        super().__init__()
        self.in_channels = in_channels
        layers, prev = [], in_channels
        for kernel, stride in zip(self.kernels, self.strides):
            # padding (k - s + 1) // 2 = (3, 2, 1, 1, 1) gives L = samples // 160 for multiples of 160
            layers.append(nn.Sequential(nn.Conv1d(prev, width, kernel, stride, padding=(kernel - stride + 1) // 2),
                                        nn.ReLU(inplace=True)))
            prev = width
        self.convs = nn.ModuleList(layers)
        self.gru = nn.GRU(width, context_dim, batch_first=True)
        self.num_features = context_dim
        self.tap_names = tuple(f"stage{i + 1}" for i in range(len(layers))) + ("context",)
        if pretrained:
            load_pretrained(self, pretrained)

    def _conv(self, x: torch.Tensor, wanted: set[str], taps: dict[str, torch.Tensor]) -> torch.Tensor:
        if x.dim() != 3:
            raise ValueError(f"CPCEncoder expects a waveform (B, 1, samples), got shape {tuple(x.shape)}")
        for i, conv in enumerate(self.convs):
            x = conv(x)
            if f"stage{i + 1}" in wanted:
                taps[f"stage{i + 1}"] = x
        return x.transpose(1, 2)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, 1, samples)`` -> ``z`` ``(B, L, width)``."""
        return self._conv(x, set(), {})

    def context(self, z: torch.Tensor) -> torch.Tensor:
        """``z`` ``(B, L, width)`` -> ``c`` ``(B, L, context_dim)``."""
        return self.gru(z)[0]

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.context(self.encode(x)).transpose(1, 2)

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        wanted, taps = set(names or self.tap_names), {}
        z = self._conv(x, wanted, taps)
        if "context" in wanted:
            taps["context"] = self.context(z).transpose(1, 2)
        return taps


def audio_resnet18(**kw) -> Backbone:
    return AudioResNet(**kw)


def tiny_audio_resnet(**kw) -> Backbone:
    """ResNet-18 layout at 1/4 width (16..128 channels) for CPU tests."""
    return AudioResNet(**{"width": 16, **kw})


def cpc_encoder(**kw) -> Backbone:
    return CPCEncoder(**kw)


def tiny_cpc_encoder(**kw) -> Backbone:
    """CPC layout (total stride 160) at 64 channels, 32-d context, for CPU tests."""
    return CPCEncoder(**{"width": 64, "context_dim": 32, **kw})
