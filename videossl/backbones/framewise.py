"""2D image networks run frame by frame: how image methods (SimCLR, BYOL, DINO ... on T=1) run.

At T=1 a frame-wise backbone is exactly the image model (same numbers as the torchvision / transformers
model on ``(B, C, H, W)``). At T>1 time is folded into the batch, ``(B*T, C, H, W)``, and the features are
averaged over time as well as space (the TSN consensus, Wang et al., ECCV 2016).

- ``resnet18/34/50``: torchvision ResNets (He et al., CVPR 2016) with ``weights=None``; taps ``stage1..4``.
- ``vit_s16`` / ``vit_b16``: ViT (Dosovitskiy et al., ICLR 2021) from a ``transformers.ViTConfig``, SDPA
  attention, position embeddings interpolated to any H, W; ``forward_features`` is the CLS token
  (averaged over time); taps ``block{i}``.
- ``tiny_r2d`` and ``tiny_vit2d``: narrow versions for CPU tests.
"""
from __future__ import annotations

import torch
import torchvision
from torch import nn

from .base import Backbone, replace_input_conv
from .weights import load_pretrained


def fold_time(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B*T, C, H, W)`` (frames of one clip stay contiguous)."""
    b, c, t, h, w = x.shape
    return x.transpose(1, 2).reshape(b * t, c, h, w)


class FrameResNet(Backbone):
    """torchvision ResNet per frame: ``(B, C, T, H, W)`` -> ``(B, D)``; tokens ``(B, D, T, H/32, W/32)``."""

    library_format = "torchvision"
    tap_names = ("stage1", "stage2", "stage3", "stage4")
    builders = {"resnet18": torchvision.models.resnet18, "resnet34": torchvision.models.resnet34,
                "resnet50": torchvision.models.resnet50}

    def __init__(self, arch: str = "resnet18", in_channels: int = 3, width: int = 64, pretrained: str = ""):
        super().__init__()
        self.arch, self.in_channels = arch, in_channels
        self.model = self.builders[arch](weights=None)
        if width != 64:  # narrower stages for tiny test variants; 64 is torchvision's ResNet
            if arch == "resnet50":
                raise ValueError("FrameResNet: width applies to resnet18/34 (BasicBlock) only")
            _narrow_resnet(self.model, width)
        replace_input_conv(self.model, in_channels)
        self.num_features = self.model.fc.in_features
        self.model.fc = nn.Identity()
        if pretrained:
            load_pretrained(self, pretrained)

    def _run(self, x: torch.Tensor, wanted: set[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        b, t = x.shape[0], x.shape[2]
        m = self.model
        y = m.maxpool(m.relu(m.bn1(m.conv1(self.to_memory_format(fold_time(x))))))
        taps = {}
        for i, layer in enumerate([m.layer1, m.layer2, m.layer3, m.layer4]):
            y = layer(y)
            if f"stage{i + 1}" in wanted:
                taps[f"stage{i + 1}"] = _unfold_time(y, b, t)
        return _unfold_time(y, b, t), taps

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, set())[0]

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        return self._run(x, set(names or self.tap_names))[1]


def _unfold_time(y: torch.Tensor, b: int, t: int) -> torch.Tensor:
    """``(B*T, D, h, w)`` -> ``(B, D, T, h, w)``."""
    return y.reshape(b, t, *y.shape[1:]).transpose(1, 2)


def _narrow_resnet(model: nn.Module, width: int) -> None:
    """Rebuild a BasicBlock ResNet with stage widths ``width * (1, 2, 4, 8)`` in place."""
    layers = [len(model.layer1), len(model.layer2), len(model.layer3), len(model.layer4)]
    model.inplanes = width
    model.conv1 = nn.Conv2d(3, width, 7, 2, 3, bias=False)
    model.bn1 = nn.BatchNorm2d(width)
    block = torchvision.models.resnet.BasicBlock
    model.layer1 = model._make_layer(block, width, layers[0])
    model.layer2 = model._make_layer(block, width * 2, layers[1], stride=2)
    model.layer3 = model._make_layer(block, width * 4, layers[2], stride=2)
    model.layer4 = model._make_layer(block, width * 8, layers[3], stride=2)
    model.fc = nn.Linear(width * 8, 1)


class FrameViT(Backbone):
    """transformers ViT per frame: ``(B, C, T, H, W)`` -> CLS ``(B, D)`` averaged over T.

    ``forward_tokens``: patch tokens of every frame ``(B, T*h*w, D)`` (no CLS), after the final LayerNorm,
    ordered (t, h, w). ``patch_size`` is the ViT patch; any H, W divisible by it.
    """

    library_format = "transformers"
    library_prefix = "model."
    strip_prefixes = ("vit.",)
    key_renames = {"encoder.layer.": "layers."}  # checkpoints saved by transformers < 5

    def __init__(self, hidden_size: int = 384, num_layers: int = 12, num_heads: int = 6, patch_size: int = 16,
                 image_size: int = 224, in_channels: int = 3, pretrained: str = ""):
        super().__init__()
        from transformers import ViTConfig, ViTModel

        config = ViTConfig(
            hidden_size=hidden_size, num_hidden_layers=num_layers, num_attention_heads=num_heads,
            intermediate_size=4 * hidden_size, image_size=image_size, patch_size=patch_size,
            num_channels=in_channels, attn_implementation="sdpa",
        )
        self.in_channels, self.patch_size = in_channels, patch_size
        self.model = ViTModel(config, add_pooling_layer=False)
        self.num_features = hidden_size
        self.tap_names = tuple(f"block{i}" for i in range(num_layers))
        if pretrained:
            load_pretrained(self, pretrained, self.strip_prefixes, self.key_renames)

    def _run(self, x: torch.Tensor, wanted: set[str]) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
        b, t = x.shape[0], x.shape[2]
        h = self.model.embeddings(fold_time(x), interpolate_pos_encoding=True)  # (B*T, 1+n, D)
        taps = {}
        for i, layer in enumerate(self.model.layers):
            h = layer(h, None)
            if f"block{i}" in wanted:
                taps[f"block{i}"] = h[:, 1:].reshape(b, -1, h.shape[-1])
        h = self.model.layernorm(h)
        return h.reshape(b, t, *h.shape[1:]), taps  # (B, T, 1+n, D)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        h = self._run(x, set())[0]
        return h[:, :, 1:].flatten(1, 2)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        return self._run(x, set())[0][:, :, 0].mean(dim=1)

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        return self._run(x, set(names or self.tap_names))[1]


def resnet18(**kw) -> Backbone:
    return FrameResNet("resnet18", **kw)


def resnet34(**kw) -> Backbone:
    return FrameResNet("resnet34", **kw)


def resnet50(**kw) -> Backbone:
    return FrameResNet("resnet50", **kw)


def tiny_r2d(**kw) -> Backbone:
    """ResNet-18 layout at 1/4 width (16..128 channels, ~0.7 M parameters) for CPU tests."""
    kw.setdefault("width", 16)
    return FrameResNet("resnet18", **kw)


def vit_s16(**kw) -> Backbone:
    """ViT-S/16 (Touvron et al., DeiT, ICML 2021): 384-d, 12 layers, 6 heads."""
    return FrameViT(**{"hidden_size": 384, "num_layers": 12, "num_heads": 6, **kw})


def vit_b16(**kw) -> Backbone:
    """ViT-B/16: 768-d, 12 layers, 12 heads."""
    return FrameViT(**{"hidden_size": 768, "num_layers": 12, "num_heads": 12, **kw})


def tiny_vit2d(**kw) -> Backbone:
    """2 layers, 64-d, 2 heads, 8 px patches for 32-64 px CPU tests."""
    return FrameViT(**{"hidden_size": 64, "num_layers": 2, "num_heads": 2, "patch_size": 8, "image_size": 32, **kw})
