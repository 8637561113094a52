"""The backbone contract every network in ``BACKBONES`` follows (the timm pattern).

- ``forward_features(x)``: ``(B, C, T, H, W)`` video (or ``(B, 1, n_mels, frames)`` / ``(B, 1, samples)``
  audio) -> pooled ``(B, D)`` with ``D = num_features``. ``forward`` is the same.
- ``forward_tokens(x)``: the last feature map before pooling, for methods that need spatial or temporal
  structure (DPC, MAE, SVT): CNNs return ``(B, D, t, h, w)``, transformers ``(B, N, D)`` tokens.
- ``feature_taps(x, names)``: intermediate outputs at named depths (``tap_names``), for distillation at
  several depths (ELo). Returns ``{name: tensor}``.
"""
from __future__ import annotations

import torch
from torch import nn


class Backbone(nn.Module):
    """Base class: subclasses set ``num_features``, ``tap_names`` and implement ``forward_tokens``."""

    num_features: int
    modality: str = "video"  # "video" or "audio"
    tap_names: tuple[str, ...] = ()

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def pool(self, tokens: torch.Tensor) -> torch.Tensor:
        """Global average pool of ``forward_tokens`` output: ``(B, D, *spatial)`` -> ``(B, D)``."""
        return tokens.flatten(2).mean(dim=2)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.forward_tokens(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_features(x)

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        raise NotImplementedError(f"{type(self).__name__} exposes no feature taps")
