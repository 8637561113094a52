"""Residual-frame input: a backbone that sees ``x[t+1] - x[t]`` instead of the frames themselves.

Tao, Wang & Yamasaki, "Rethinking Motion Representation: Residual Frames with 3D ConvNets for Better Action
Recognition" (2020) and their "Self-supervised Video Representation Learning Using Inter-intra Contrastive
Framework" (ACM MM 2020) use residual frames as a cheap motion stream: the static appearance cancels and what
moves remains. Chosen with ``backbone.kwargs.input_transform=residual``; ``encoder.pt`` keeps the kwarg, so every
evaluation of such an encoder feeds it residuals too.
"""
from __future__ import annotations

import torch

from ..transforms.video import frame_differences
from .base import Backbone


def residual_frames(x: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B, C, T, H, W)``: ``frame_differences(x, keep_length=True)`` (T unchanged, the
    last step repeated; zeros at ``T=1``), the input a ``ResidualInput`` backbone sees."""
    return frame_differences(x, keep_length=True)


class ResidualInput(Backbone):
    """Wraps a video backbone so every entry point (features, tokens, taps) sees residual frames."""

    def __init__(self, inner: Backbone):
        super().__init__()
        self.inner = inner
        self.num_features = inner.num_features
        self.modality = inner.modality
        self.tap_names = inner.tap_names

    def __getattr__(self, name: str):
        """Attributes of the wrapped backbone (``patch_size``, ``tubelet_size``, ``cls_token``...) stay visible."""
        try:
            return super().__getattr__(name)
        except AttributeError:
            if name == "inner":
                raise
            return getattr(super().__getattr__("inner"), name)

    def transform_input(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> what the wrapped backbone sees (residual frames); MAE reconstructs this."""
        return residual_frames(x)

    def forward_tokens(self, x: torch.Tensor, *args, **kwargs) -> torch.Tensor:
        return self.inner.forward_tokens(residual_frames(x), *args, **kwargs)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.inner.forward_features(residual_frames(x))

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        return self.inner.feature_taps(residual_frames(x), names)


INPUT_TRANSFORMS = {"rgb": None, "residual": ResidualInput}
