"""V-JEPA (Bardes et al., "Revisiting Feature Prediction for Learning Visual Representations from Video", 2024,
https://arxiv.org/abs/2404.08471): predict the features of masked spatio-temporal regions from the visible ones.

One clip per sample. Two multi-block 3D mask sets (short-range: 8 blocks of 15% of the frame; long-range: 2 blocks
of 70%; each block a tube over the whole clip) each split the tokens into a context and a target region
(``transforms/masks.py``). Per mask set the context encoder (the backbone, trained) runs on the context tokens only
(``forward_tokens(x, keep_index)``) and a narrow ViT predictor (``heads.JEPAPredictor``: learned mask token per set,
fixed 3D sine-cosine positions) predicts the target tokens' features. The target encoder, an EMA of the context
encoder whose momentum rises linearly, encodes the whole clip once; its tokens, layer-normalised and detached, are
the targets of an L1 regression (``losses/jepa.py``), averaged over the mask sets.

Follows facebookresearch/jepa ``app/vjepa/train.py`` (one target-encoder pass, one context-encoder and predictor
pass per mask set, ``loss_fn``; the momentum scheduler spans ``ipe_scale`` x the training steps). The encoder is a
ViT with ``patch_size`` / ``tubelet_size`` that can run on a subset of its tokens (``tiny_videomae``,
``videomae_*``); at T=1 the image is repeated to the tubelet length. ``encoder.pt`` is the context encoder and
``encoder_teacher.pt`` the target encoder, which V-JEPA's evaluations read (``evals/video_classification_frozen/
eval.py``: ``checkpoint_key='target_encoder'``).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
import torch.distributed as dist
from torch import nn

from ..backbones.video_vit import TimesformerBackbone
from ..data.sampling import RandomClipSampler, ViewSpec
from ..errors import UserError
from ..heads import JEPAPredictor
from ..losses.distributed import all_reduce_no_grad
from ..losses.jepa import jepa_regression_loss, layer_normalized_targets
from ..nn.ema import EMATeacher
from ..nn.schedules import linear_schedule
from ..transforms.masks import (MultiBlockMaskSpec, fit_clip_to_tubelet, mask_counts, mask_indices,
                                multiblock_mask, sample_block_shape)
from ..transforms.video import build_video_transform
from .base import Method, MethodConfig, StepInfo


@dataclass
class VJEPAConfig(MethodConfig):
    """Defaults: facebookresearch/jepa ``configs/pretrain/vitl16.yaml`` (mask, loss, optimization.ema), except the
    predictor's size: small here for CPU runs (the reference's in the comments and in ``vjepa_k400_vitl16``)."""

    name: str = "vjepa"
    short_range_blocks: int = 8  # mask[0].num_blocks
    short_range_scale: list[float] = field(default_factory=lambda: [0.15, 0.15])  # mask[0].spatial_scale
    long_range_blocks: int = 2  # mask[1].num_blocks
    long_range_scale: list[float] = field(default_factory=lambda: [0.7, 0.7])  # mask[1].spatial_scale
    aspect_ratio: list[float] = field(default_factory=lambda: [0.75, 1.5])  # mask[*].aspect_ratio
    temporal_scale: list[float] = field(default_factory=lambda: [1.0, 1.0])  # mask[*].temporal_scale: tubes
    max_temporal_keep: float = 1.0  # mask[*].max_temporal_keep
    pred_dim: int = 64  # model.pred_embed_dim: 384
    pred_depth: int = 1  # model.pred_depth: 12
    pred_heads: int = 2  # app/vjepa/utils.py: num_heads=encoder.backbone.num_heads (ViT-L: 16)
    uniform_power: bool = True  # model.uniform_power (the predictor's 3D sine-cosine table)
    loss_exp: float = 1.0  # loss.loss_exp: L1
    momentum_base: float = 0.998  # optimization.ema: [0.998, 1.0], linear ...
    momentum_final: float = 1.0
    ema_schedule_scale: float = 1.25  # ... over optimization.ipe_scale x training: 0.9996 at the last step
    crop_scale: list[float] = field(default_factory=lambda: [0.3, 1.0])  # data_aug.random_resize_scale


class VJEPA(Method):
    Config = VJEPAConfig
    smoke_overrides = ("backbone.name=tiny_videomae",)

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        inner = getattr(self.backbone, "inner", self.backbone)  # through an input_transform wrapper
        if not hasattr(inner, "tubelet_size") or not hasattr(inner, "patch_size") or isinstance(
                inner, TimesformerBackbone):
            raise UserError(f"method vjepa needs a ViT backbone that runs on a subset of its tokens (tiny_videomae, "
                            f"videomae_*), got backbone.name={cfg.backbone.name}")
        self.mask_specs = self._mask_specs(h)
        if h.loss_exp <= 0:
            raise UserError(f"method.loss_exp must be > 0, got {h.loss_exp}")
        if h.pred_dim % h.pred_heads:
            raise UserError(f"method.pred_dim={h.pred_dim} must be a multiple of method.pred_heads={h.pred_heads}")
        self.tubelet = int(inner.tubelet_size)
        self.predictor = JEPAPredictor(self.backbone.num_features, h.pred_dim, h.pred_depth, h.pred_heads,
                                       num_mask_tokens=len(self.mask_specs), uniform_power=h.uniform_power)
        self.target = EMATeacher(self.backbone)

    @staticmethod
    def _mask_specs(h: Any) -> list[MultiBlockMaskSpec]:
        """The short- and long-range mask sets; a bad range is a ``UserError`` naming the key."""
        shared = {"aspect_ratio": tuple(h.aspect_ratio), "temporal_scale": tuple(h.temporal_scale),
                  "max_temporal_keep": float(h.max_temporal_keep)}
        specs = []
        for prefix in ("short_range", "long_range"):
            try:
                specs.append(MultiBlockMaskSpec(num_blocks=int(h[f"{prefix}_blocks"]),
                                                spatial_scale=tuple(h[f"{prefix}_scale"]), **shared))
            except (ValueError, TypeError) as e:
                raise UserError(f"method.{prefix}_* / aspect_ratio / temporal_scale / max_temporal_keep: {e}") from None
        return specs

    def views(self) -> ViewSpec:
        """One clip: random resized crop (``crop_scale``) and flip, no colour change (``app/vjepa/transforms.py``)."""
        d = self.cfg.data
        transform = build_video_transform("finetune", d.crop_size, scale=tuple(self.hparams.crop_scale))
        return ViewSpec(sampler=RandomClipSampler(d.num_frames, d.frame_stride), transforms={"clip": transform})

    def extra_encoders(self) -> dict[str, tuple[nn.Module, str, dict[str, Any]]]:
        """The target (EMA) encoder as ``encoder_teacher.pt``: what V-JEPA evaluates (``checkpoint_key:
        target_encoder`` in facebookresearch/jepa ``configs/evals/vitl16_k400_16x8x3.yaml``)."""
        name, kwargs = self.encoder_spec()
        return {"teacher": (self.target.module, name, kwargs)}

    def sample_masks(self, batch: int, grid: tuple[int, int, int], step: int) -> list[torch.Tensor]:
        """One bool ``(B, N)`` target mask per mask set (True = predicted). The block shapes come from a generator
        seeded by the step and ``train.seed`` (the same on every process, as the reference's per-iteration seed);
        positions from torch's global RNG (checkpointed with the run)."""
        shapes = torch.Generator().manual_seed(int(self.cfg.train.seed) * 1_000_003 + int(step))
        return [multiblock_mask(batch, grid, spec, sample_block_shape(grid, spec, shapes)).flatten(1)
                for spec in self.mask_specs]

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        clip = self.fit_clip(batch["video"][0])  # (B, C, T, H, W)
        masks = self.sample_masks(clip.shape[0], self.backbone.grid(clip), step.step)
        return self.masked_prediction(clip, masks)

    def fit_clip(self, clip: torch.Tensor) -> torch.Tensor:
        try:
            return fit_clip_to_tubelet(clip, self.tubelet)
        except ValueError as e:
            raise UserError(f"data.num_frames: {e}") from None

    def masked_prediction(self, clip: torch.Tensor, masks: list[torch.Tensor]) -> dict[str, torch.Tensor]:
        """The loss of ``clip (B, C, T, H, W)`` under given target masks ``[(B, N) bool]``, one per mask set."""
        grid = self.backbone.grid(clip)
        with torch.no_grad():
            targets_all = layer_normalized_targets(self.target.module.forward_tokens(clip))  # (B, N, D)
        keeps = self.global_keep_counts(masks)
        predictions, targets, logs = [], [], {}
        for i, (mask, (context_keep, target_keep)) in enumerate(zip(masks, keeps)):
            context_index, target_index = (ix.to(clip.device) for ix in mask_indices(mask, context_keep, target_keep))
            context = self.backbone.forward_tokens(clip, keep_index=context_index)  # (B, Nc, D)
            predictions.append(self.predictor(context, context_index, target_index, grid, mask_set=i))
            targets.append(targets_all.gather(1, target_index.unsqueeze(-1).expand(-1, -1, targets_all.shape[-1])))
            name = ("short", "long")[i] if len(masks) == 2 else str(i)
            logs[f"context_tokens_{name}"] = torch.tensor(float(context_keep))
            if i == 0:
                logs["embedding"] = context.mean(dim=1).detach()
        loss = jepa_regression_loss(predictions, targets, self.hparams.loss_exp)
        return {"loss": loss, **logs}

    @staticmethod
    def global_keep_counts(masks: list[torch.Tensor]) -> list[tuple[int, int]]:
        """Per mask set ``(context, target)`` token counts every sample of the GLOBAL batch can fill (the minimum over
        samples and processes), so every process cuts its masks alike and the loss is a global-batch mean."""
        counts = torch.tensor([mask_counts(m) for m in masks], dtype=torch.int64)  # (sets, 2)
        if dist.is_available() and dist.is_initialized():
            backend = dist.get_backend()
            device = torch.device("cuda", torch.cuda.current_device()) if backend == "nccl" else torch.device("cpu")
            counts = all_reduce_no_grad(counts.to(device), op=dist.ReduceOp.MIN).cpu()
        return [(int(c), int(t)) for c, t in counts.tolist()]

    def on_after_optimizer_step(self, step: StepInfo) -> None:
        h = self.hparams
        horizon = int(h.ema_schedule_scale * step.total_steps)
        momentum = linear_schedule(step.step, horizon, h.momentum_base, h.momentum_final)
        self.target.update(self.backbone, momentum)
