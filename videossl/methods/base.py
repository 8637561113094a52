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

import numpy as np
import torch
from omegaconf import DictConfig
from torch import nn

from ..backbones import Backbone, create_backbone
from ..data.sampling import VideoMeta, ViewSpec
from ..errors import UserError


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


def require_frames(method: str, num_frames: int, minimum: int = 2) -> None:
    """Temporal tasks have nothing to learn from one frame: say so in one line instead of training on noise."""
    if num_frames < minimum:
        raise UserError(f"method {method} is a temporal task and needs data.num_frames >= {minimum}, got {num_frames}")


# A 10 s, 30 fps video with audio: what ``check_view_names`` draws one sample from.
PROBE_VIDEO = VideoMeta(num_frames=300, fps=30.0, duration=10.0, height=128, width=171, has_audio=True)


def check_view_names(name: str, views: ViewSpec) -> None:
    """Fail now, not at the first batch, when the sampler asks for a view transform (``ViewRequest.transform``:
    ``"clip"``, ``"narrow"``, ``"blocks"``, ``"global"`` ...) that is not a key of ``views.transforms``.

    Samplers are pure functions of (metadata, rng), so one sample of ``PROBE_VIDEO`` with a private generator lists
    the keys the method will ask for without touching a file or the training randomness."""
    sampled = views.sampler(PROBE_VIDEO, np.random.default_rng(0))
    missing = sorted({view.transform for view in sampled.views} - set(views.transforms))
    if missing:
        raise UserError(f"method {name}: its sampler asks for view transform {', '.join(map(repr, missing))}, which "
                        f"its views() does not define (it defines {', '.join(map(repr, sorted(views.transforms)))})")


def concat_views(views: list[torch.Tensor]) -> torch.Tensor:
    """``[(B, C, T, H, W)] * V`` -> ``(V * B, C, T, H, W)`` so all views share one forward pass (and BN sees
    them together, as in SimCLR's implementation)."""
    return torch.cat(views, dim=0)
