"""The method API: one file per method, a config dataclass, declared views, heads and ``training_step``.

A method is an ``nn.Module`` that owns its backbone (the encoder that is saved as ``encoder.pt``), its heads
and any teacher. The engine calls, per optimizer step::

    out = method.training_step(batch, step)        # {"loss": scalar, ...scalars to log, "embedding": (B, D)}
    backward(out["loss"]); clip; optimizer.step()
    method.on_after_optimizer_step(step)            # EMA teachers, queues, schedules owned by the method
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, NamedTuple

import torch
from omegaconf import DictConfig
from torch import nn

from ..backbones import Backbone, create_backbone
from ..data.sampling import ViewSpec


class StepInfo(NamedTuple):
    """Where training is: ``step`` counts optimizer steps from 0 to ``total_steps`` (exclusive)."""

    step: int
    total_steps: int
    epoch: int

    @property
    def progress(self) -> float:
        return self.step / max(1, self.total_steps)


@dataclass
class MethodConfig:
    """Base of every method's config (the recipe's ``method:`` section); each method subclasses it with its own
    hyperparameters. The recipe loader (``videossl.config``) picks the subclass by ``name``."""

    name: str = "simclr"


class Method(nn.Module):
    """Base class. Subclasses set ``Config`` (a ``MethodConfig`` dataclass) and implement
    ``views`` and ``training_step``."""

    Config: ClassVar[type[MethodConfig]] = MethodConfig
    # Overrides the smoke test adds to train this method for two steps on CPU (e.g. a tiny ViT for MAE).
    smoke_overrides: ClassVar[tuple[str, ...]] = ()

    def __init__(self, cfg: DictConfig):
        super().__init__()
        self.cfg = cfg
        self.backbone_kwargs: dict[str, Any] = dict(cfg.backbone.kwargs)
        if cfg.backbone.pretrained:
            self.backbone_kwargs["pretrained"] = cfg.backbone.pretrained
        self.backbone: Backbone = create_backbone(cfg.backbone.name, **self.backbone_kwargs)

    @property
    def hparams(self) -> DictConfig:
        """This method's own section of the config (``cfg.method``)."""
        return self.cfg.method

    def views(self) -> ViewSpec:
        """What the data pipeline must sample and how to augment each view."""
        raise NotImplementedError

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        """Return ``{"loss": scalar}`` plus detached scalars to log and optionally ``"embedding"`` ``(B, D)``
        (normalised or not) for the collapse monitor."""
        raise NotImplementedError

    def on_after_optimizer_step(self, step: StepInfo) -> None:
        """Update EMA teachers, queues or anything else the method owns after each optimizer step."""

    def extra_encoders(self) -> dict[str, tuple[Backbone, str, dict[str, Any]]]:
        """Other towers to save next to ``encoder.pt`` as ``encoder_<key>.pt``: ``{key: (module, backbone name,
        kwargs)}`` (e.g. ``{"audio": (self.audio_backbone, "tiny_audio_resnet", {})}``)."""
        return {}

    def encoder_spec(self) -> tuple[str, dict[str, Any]]:
        """``(backbone name, kwargs)`` so ``encoder.pt`` can be rebuilt without the method class."""
        kwargs = {k: v for k, v in self.backbone_kwargs.items() if k != "pretrained"}
        return self.cfg.backbone.name, kwargs


def concat_views(views: list[torch.Tensor]) -> torch.Tensor:
    """``[(B, C, T, H, W)] * V`` -> ``(V * B, C, T, H, W)`` so all views share one forward pass (and BN sees
    them together, as in SimCLR's implementation)."""
    return torch.cat(views, dim=0)
