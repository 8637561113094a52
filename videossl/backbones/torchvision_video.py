"""torchvision's video networks behind the backbone contract, built with ``weights=None`` (no download).

The torchvision model is kept whole under ``self.model`` minus its classifier, so a torchvision
``state_dict`` loads into it and exports from it unchanged (``weights.py``, ``export.py``).

- ``r3d_18``, ``mc3_18``, ``r2plus1d_18``: Tran et al., "A Closer Look at Spatiotemporal Convolutions for
  Action Recognition", CVPR 2018. 512-d features, taps ``stage1..4`` = ``layer1..4``.
- ``s3d``: Xie et al., "Rethinking Spatiotemporal Feature Learning", ECCV 2018. 1024-d.
- ``swin3d_t``: Liu et al., "Video Swin Transformer", CVPR 2022. 768-d; any T/H/W (windows are padded).
- ``mvit_v2_s``: Li et al., "MViTv2", CVPR 2022. 768-d CLS token; its relative position tables fix the input
  to 16x224x224, so it is for fine-tuning on that shape only.
"""
from __future__ import annotations

import torch
import torchvision.models.video as tvv
from torch import nn

from .base import Backbone, replace_input_conv
from .weights import load_pretrained


class TorchvisionVideoResNet(Backbone):
    """``r3d_18`` / ``mc3_18`` / ``r2plus1d_18``: ``(B, C, T, H, W)`` -> ``(B, 512)``.

    ``forward_tokens``: ``(B, 512, T/8, H/16, W/16)`` (``mc3_18``: ``(B, 512, T, H/16, W/16)``, its upper
    stages are 2D). Any T >= 1 and H, W >= 16.
    """

    library_format = "torchvision"
    tap_names = ("stage1", "stage2", "stage3", "stage4")
    builders = {"r3d_18": tvv.r3d_18, "mc3_18": tvv.mc3_18, "r2plus1d_18": tvv.r2plus1d_18}

    def __init__(self, arch: str = "r3d_18", in_channels: int = 3, pretrained: str = ""):
        super().__init__()
        self.arch, self.in_channels = arch, in_channels
        self.model = self.builders[arch](weights=None)
        replace_input_conv(self.model, in_channels)
        self.model.fc = nn.Identity()
        self.num_features = 512
        if pretrained:
            load_pretrained(self, pretrained)

    def _stages(self) -> list[nn.Module]:
        m = self.model
        return [m.layer1, m.layer2, m.layer3, m.layer4]

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        x = self.model.stem(self.to_memory_format(x))
        for stage in self._stages():
            x = stage(x)
        return x

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        wanted, taps = set(names or self.tap_names), {}
        x = self.model.stem(self.to_memory_format(x))
        for name, stage in zip(self.tap_names, self._stages()):
            x = stage(x)
            if name in wanted:
                taps[name] = x
        return taps


class TorchvisionS3D(Backbone):
    """``s3d``: ``(B, C, T, H, W)`` -> ``(B, 1024)``; taps after each resolution (192/480/832/1024 ch)."""

    library_format = "torchvision"
    tap_names = ("stage1", "stage2", "stage3", "stage4")
    _tap_after = {3: "stage1", 6: "stage2", 12: "stage3", 15: "stage4"}  # index in ``features``

    def __init__(self, in_channels: int = 3, pretrained: str = ""):
        super().__init__()
        self.in_channels = in_channels
        self.model = tvv.s3d(weights=None)
        del self.model.classifier
        replace_input_conv(self.model, in_channels)
        self.num_features = 1024
        if pretrained:
            load_pretrained(self, pretrained)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self.model.features(self.to_memory_format(x))

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        wanted, taps = set(names or self.tap_names), {}
        x = self.to_memory_format(x)
        for i, layer in enumerate(self.model.features):
            x = layer(x)
            if self._tap_after.get(i) in wanted:
                taps[self._tap_after[i]] = x
        return taps


class TorchvisionSwin3d(Backbone):
    """``swin3d_t``: ``(B, C, T, H, W)`` -> ``(B, 768)``; ``forward_tokens`` ``(B, 768, T/2, H/32, W/32)``."""

    library_format = "torchvision"
    tap_names = ("stage1", "stage2", "stage3", "stage4")

    def __init__(self, in_channels: int = 3, pretrained: str = ""):
        super().__init__()
        self.in_channels = in_channels
        self.model = tvv.swin3d_t(weights=None)
        replace_input_conv(self.model, in_channels)
        del self.model.head
        self.num_features = 768
        if pretrained:
            load_pretrained(self, pretrained)

    def _run(self, x: torch.Tensor, wanted: set[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        x = self.model.pos_drop(self.model.patch_embed(x))  # (B, t, h, w, C): torchvision's swin layout
        taps = {}
        for i, layer in enumerate(self.model.features):
            x = layer(x)
            name = f"stage{i // 2 + 1}"
            if i % 2 == 0 and name in wanted:  # even indices are the stages, odd ones the patch merging
                taps[name] = x.permute(0, 4, 1, 2, 3)
        return x, taps

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        x, _ = self._run(x, set())
        return self.model.norm(x).permute(0, 4, 1, 2, 3)

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        return self._run(x, set(names or self.tap_names))[1]


class TorchvisionMViT(Backbone):
    """``mvit_v2_s``: ``(B, C, 16, 224, 224)`` -> ``(B, 768)`` (CLS); ``forward_tokens`` ``(B, 392, 768)``."""

    library_format = "torchvision"

    def __init__(self, in_channels: int = 3, pretrained: str = ""):
        super().__init__()
        self.in_channels = in_channels
        self.model = tvv.mvit_v2_s(weights=None)
        replace_input_conv(self.model, in_channels)
        del self.model.head
        self.num_features = 768
        self.tap_names = tuple(f"block{i}" for i in range(len(self.model.blocks)))
        if pretrained:
            load_pretrained(self, pretrained)

    def _run(self, x: torch.Tensor, wanted: set[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        m = self.model
        x = m.conv_proj(x).flatten(2).transpose(1, 2)
        x = m.pos_encoding(x)
        thw = (m.pos_encoding.temporal_size,) + tuple(m.pos_encoding.spatial_size)
        taps = {}
        for i, block in enumerate(m.blocks):
            x, thw = block(x, thw)
            if f"block{i}" in wanted:
                taps[f"block{i}"] = x[:, 1:]
        return m.norm(x), taps

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, set())[0][:, 1:]

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, set())[0][:, 0]

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        return self._run(x, set(names or self.tap_names))[1]


def r3d_18(**kw) -> Backbone:
    return TorchvisionVideoResNet("r3d_18", **kw)


def mc3_18(**kw) -> Backbone:
    return TorchvisionVideoResNet("mc3_18", **kw)


def r2plus1d_18(**kw) -> Backbone:
    return TorchvisionVideoResNet("r2plus1d_18", **kw)
