"""The ViT fine-tuning regularisers of BEiT / VideoMAE, all off by default (``finetune.*`` in ``FinetuneConfig``).

Read from MCG-NJU/VideoMAE (``run_class_finetuning.py``, ``optim_factory.py``, timm's ``Mixup`` it calls):

- layer-wise lr decay (``--layer_decay``): layer id 0 = the embeddings (patch / position / time embeddings, CLS
  token), ``i + 1`` = transformer block ``i``, ``L + 1`` = everything after the blocks (final norm, classifier);
  a parameter of layer id ``l`` trains at ``lr x decay ** (L + 1 - l)`` (``get_num_layer_for_vit``,
  ``LayerDecayValueAssigner``);
- stochastic depth (``--drop_path``): rates linear from 0 to ``drop_path`` over the blocks (timm's
  ``dpr = linspace(0, drop_path_rate, depth)``), one draw per sample (``mode="row"``);
- mixup / CutMix with label smoothing (``--mixup 0.8 --cutmix 1.0 --smoothing 0.1``, timm ``Mixup`` with
  ``mode="batch"``, ``prob=1``, ``switch_prob=0.5``): one lambda per batch, each clip mixed with the batch
  reversed; a CutMix box covers the same pixels on every frame; targets are the smoothed one-hot labels mixed
  with the same lambda (``off = smoothing / K``, ``on = 1 - smoothing + off``), the loss is soft-target
  cross-entropy.
"""
from __future__ import annotations

import math
import re
from typing import Any

import torch
from torch import nn
from torchvision.ops import StochasticDepth

from videossl.errors import UserError

_BLOCK = re.compile(r"(?:^|\.)(?:layer|layers|blocks)\.(\d+)\.")


def layer_decay_scales(model: nn.Module, decay: float) -> dict[str, float]:
    """``{parameter name: lr factor}`` for layer-wise lr decay; ``{}`` when ``decay >= 1`` (off).

    Blocks are found by name (``...layer.<i>.`` / ``...layers.<i>.`` / ``...blocks.<i>.``, as transformers' and
    timm's ViTs name them); a backbone without such blocks raises ``UserError``.
    """
    if decay >= 1.0:
        return {}
    names = [name for name, _ in model.named_parameters()]
    block_of = {name: int(match.group(1)) for name in names if (match := _BLOCK.search(name))}
    if not block_of:
        raise UserError("finetune.layer_decay < 1 needs a transformer backbone whose blocks are named "
                        "layer.<i> / blocks.<i> (VideoMAE, TimeSformer, ViViT); set finetune.layer_decay=1.0")
    num_layers = max(block_of.values()) + 1
    scales = {}
    for name in names:
        if name in block_of:
            layer = block_of[name] + 1
        elif "embed" in name or "cls_token" in name:
            layer = 0
        else:
            layer = num_layers + 1
        scales[name] = decay ** (num_layers + 1 - layer)
    return scales


def with_layer_decay(optimizer: torch.optim.Optimizer, model: nn.Module, decay: float) -> torch.optim.Optimizer:
    """``optimizer`` with its groups split by ``layer_decay_scales``, each at its group's lr x the layer's factor
    (weight decay and the other settings kept); unchanged when ``decay >= 1``. Call before the first step."""
    scales = layer_decay_scales(model, decay)
    if not scales:
        return optimizer
    name_of = {id(param): name for name, param in model.named_parameters()}
    groups = []
    for group in optimizer.param_groups:
        by_scale: dict[float, list[nn.Parameter]] = {}
        for param in group["params"]:
            by_scale.setdefault(scales[name_of[id(param)]], []).append(param)
        for scale, params in sorted(by_scale.items()):
            groups.append({**group, "params": params, "lr": group["lr"] * scale, "layer_decay_scale": scale})
    optimizer.param_groups.clear()
    for group in groups:
        optimizer.add_param_group(group)
    return optimizer


def set_drop_path(backbone: nn.Module, rate: float) -> int:
    """Stochastic depth at rates ``linspace(0, rate, depth)`` over the blocks; returns the number of blocks set.

    Each block's ``drop_path`` module (an ``nn.Identity`` when the backbone was built without stochastic depth) is
    replaced by torchvision's ``StochasticDepth(p, "row")``. Backbones whose blocks have no ``drop_path`` (the
    transformers VideoMAE layers) raise ``UserError``: there is nowhere to put it.
    """
    if rate <= 0.0:
        return 0
    blocks = [module for module in backbone.modules() if isinstance(getattr(module, "drop_path", None), nn.Module)]
    if not blocks:
        raise UserError(f"finetune.drop_path: {type(backbone).__name__} has no blocks with a drop_path module "
                        "(stochastic depth is supported for TimeSformer); set finetune.drop_path=0")
    rates = torch.linspace(0.0, float(rate), len(blocks)).tolist()
    for block, p in zip(blocks, rates):
        block.drop_path = StochasticDepth(p, mode="row")
    return len(blocks)


def smoothed_one_hot(labels: torch.Tensor, num_classes: int, smoothing: float = 0.0) -> torch.Tensor:
    """``(B,)`` ints -> ``(B, K)`` targets: ``1 - smoothing + smoothing / K`` on the label, ``smoothing / K`` elsewhere."""
    off = smoothing / num_classes
    targets = torch.full((labels.shape[0], num_classes), off, device=labels.device)
    return targets.scatter_(1, labels.long().view(-1, 1), 1.0 - smoothing + off)


def mix_clips(clips: torch.Tensor, labels: torch.Tensor, num_classes: int, *, mixup_alpha: float = 0.0,
              cutmix_alpha: float = 0.0, switch_prob: float = 0.5,
              smoothing: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """Mixup / CutMix of a batch of clips ``(B, C, T, H, W)`` with the batch reversed (timm ``Mixup``, batch mode).

    Returns ``(clips, targets (B, K))``. With both alphas > 0, CutMix is drawn with probability ``switch_prob``;
    lambda ~ Beta(alpha, alpha); CutMix's box has sides ``sqrt(1 - lambda)`` of H and W around a uniform centre,
    clipped to the frame, and lambda becomes the uncovered fraction. Draws from torch's global generator (seeded
    by the fine-tuning run).
    """
    if mixup_alpha <= 0.0 and cutmix_alpha <= 0.0:
        raise ValueError("mix_clips: mixup_alpha or cutmix_alpha must be > 0")
    use_cutmix = cutmix_alpha > 0.0 and (mixup_alpha <= 0.0 or float(torch.rand(())) < switch_prob)
    alpha = cutmix_alpha if use_cutmix else mixup_alpha
    lam = float(torch.distributions.Beta(alpha, alpha).sample())
    flipped = clips.flip(0)
    if use_cutmix:
        h, w = clips.shape[-2:]
        cut = math.sqrt(1.0 - lam)
        cy, cx = int(torch.randint(h, ())), int(torch.randint(w, ()))
        half_h, half_w = int(h * cut) // 2, int(w * cut) // 2
        y0, y1 = max(cy - half_h, 0), min(cy + half_h, h)
        x0, x1 = max(cx - half_w, 0), min(cx + half_w, w)
        clips = clips.clone()
        clips[..., y0:y1, x0:x1] = flipped[..., y0:y1, x0:x1]
        lam = 1.0 - (y1 - y0) * (x1 - x0) / float(h * w)
    else:
        clips = clips * lam + flipped * (1.0 - lam)
    targets = smoothed_one_hot(labels, num_classes, smoothing)
    return clips, targets * lam + targets.flip(0) * (1.0 - lam)


def finetune_batch(clips: torch.Tensor, labels: torch.Tensor, num_classes: int,
                   settings: Any) -> tuple[torch.Tensor, torch.Tensor, float]:
    """``(clips, targets, label_smoothing for F.cross_entropy)`` of one training batch under ``settings``
    (``FinetuneConfig``): mixed clips and soft targets when mixup or CutMix is on (smoothing folded into the
    targets), else the clips, the labels and ``finetune.label_smoothing``."""
    mixup, cutmix = float(getattr(settings, "mixup_alpha", 0.0)), float(getattr(settings, "cutmix_alpha", 0.0))
    smoothing = float(getattr(settings, "label_smoothing", 0.0))
    if mixup <= 0.0 and cutmix <= 0.0:
        return clips, labels, smoothing
    clips, targets = mix_clips(clips, labels, num_classes, mixup_alpha=mixup, cutmix_alpha=cutmix,
                               switch_prob=float(getattr(settings, "mixup_switch_prob", 0.5)), smoothing=smoothing)
    return clips, targets, 0.0
