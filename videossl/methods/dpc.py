"""Dense Predictive Coding (Han, Xie and Zisserman, "Video Representation Learning by Dense Predictive Coding",
ICCV-W 2019).

A sample is ``num_blocks`` contiguous blocks of ``data.num_frames`` frames with one spatial crop (DPC: 8 blocks
x 5 frames, stride 3, 128 px, 2D3D-ResNet-18). Each block goes through the backbone to a feature map
``(D, h, w)`` (``forward_tokens``, averaged over the block's remaining time steps, DPC's ``avg_pool3d`` over
``last_duration``); a ConvGRU aggregates the ReLU'd maps of the first ``num_blocks - pred_steps`` blocks into a
context ``c``; a two-layer 1x1 conv network ``phi`` predicts the next block's map from ``c``, and the prediction
is fed back through the ConvGRU to predict the step after (sequential prediction, DPC eq. 2-3). The loss is the
dense InfoNCE of ``losses/dpc.py``: every predicted vector (batch, step, position) against every true one.

Curriculum of prediction steps: the issue asks for DPC's curriculum. DPC grows the task from easy to hard; here
the number of future blocks predicted and scored grows linearly from 1 to ``pred_steps`` over the first
``curriculum_fraction`` of training (0 turns it off: always ``pred_steps``), with the context fixed at the first
``num_blocks - pred_steps`` blocks. At ``data.num_frames=1`` every block is one frame and DPC predicts future
frames' feature maps: still a meaningful task, so the T=1 case needs no special path.

Needs a convolutional backbone (``forward_tokens`` -> ``(B, D, t, h, w)``): ``r2d3d_18`` as in the paper,
``tiny_r3d`` for CPU runs. MemDPC's memory bank (Han et al., ECCV 2020) lives in ``memdpc.py``, which reuses
``predict_future`` / ``prediction_loss`` and overrides ``predict_block``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..config import MethodConfig
from ..data.sampling import ContiguousBlockSampler, ViewSpec
from ..errors import UserError
from ..losses.dpc import dpc_loss
from .base import Method, StepInfo


@dataclass
class DPCConfig(MethodConfig):
    name: str = "dpc"
    num_blocks: int = 8  # DPC: 8 blocks (5 context + 3 predicted)
    pred_steps: int = 3  # DPC: predict 3 future blocks
    gru_kernel: int = 1  # DPC's ConvGRU uses 1x1 convolutions
    temperature: float = 1.0  # DPC (and MemDPC's released code): raw dot products
    normalize: bool = False  # True: L2-normalise predictions and targets (cosine scores / temperature)
    curriculum_fraction: float = 0.0  # 0: always pred_steps; else grow 1 -> pred_steps over this training fraction
    crop_scale_min: float = 0.3  # DPC: random crop + flip + colour jitter, same on all blocks
    colour_strength: float = 0.5


class ConvGRUCell(nn.Module):
    """One convolutional GRU step (Ballas et al., ICLR 2016) on ``(B, D, h, w)`` maps, as in DPC."""

    def __init__(self, in_dim: int, hidden_dim: int, kernel: int = 1):
        super().__init__()
        pad = kernel // 2
        self.gates = nn.Conv2d(in_dim + hidden_dim, 2 * hidden_dim, kernel, padding=pad)  # reset, update
        self.candidate = nn.Conv2d(in_dim + hidden_dim, hidden_dim, kernel, padding=pad)
        self.hidden_dim = hidden_dim

    def forward(self, x: torch.Tensor, hidden: torch.Tensor | None) -> torch.Tensor:
        if hidden is None:
            hidden = x.new_zeros(x.shape[0], self.hidden_dim, *x.shape[2:])
        reset, update = torch.sigmoid(self.gates(torch.cat([x, hidden], dim=1))).chunk(2, dim=1)
        candidate = torch.tanh(self.candidate(torch.cat([x, reset * hidden], dim=1)))
        return (1 - update) * hidden + update * candidate


class DPC(Method):
    Config = DPCConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if not 1 <= h.pred_steps < h.num_blocks:
            raise UserError(f"method.pred_steps must be in [1, num_blocks={h.num_blocks}), got {h.pred_steps}")
        if h.temperature <= 0:
            raise UserError(f"method.temperature must be > 0, got {h.temperature}")
        d = self.backbone.num_features
        self.aggregate = ConvGRUCell(d, d, h.gru_kernel)
        self.predict = nn.Sequential(nn.Conv2d(d, d, 1), nn.ReLU(inplace=True), nn.Conv2d(d, d, 1))  # DPC's phi

    def views(self) -> ViewSpec:
        from ..transforms.video import build_video_transform

        d, h = self.cfg.data, self.hparams
        # One view holding all blocks, so one random crop / jitter covers every block (DPC: same crop on the
        # whole sequence; its colour jitter is per frame, consistent here).
        transform = build_video_transform("ssl", d.crop_size, scale=(h.crop_scale_min, 1.0),
                                          strength=h.colour_strength, blur_p=0.0)
        sampler = ContiguousBlockSampler(h.num_blocks, d.num_frames, d.frame_stride)
        return ViewSpec(sampler=sampler, transforms={"blocks": transform})

    def block_features(self, blocks: torch.Tensor) -> torch.Tensor:
        """``(B, C, N*T, H, W)`` -> per-block feature maps ``(B, N, D, h, w)`` (time averaged inside a block)."""
        b, c, nt, height, width = blocks.shape
        n = self.hparams.num_blocks
        if nt % n:
            raise UserError(f"dpc: the blocks view has {nt} frames, not a multiple of num_blocks={n}")
        t = nt // n
        per_block = blocks.view(b, c, n, t, height, width).transpose(1, 2).reshape(b * n, c, t, height, width)
        tokens = self.backbone.forward_tokens(per_block)
        if tokens.dim() != 5:
            raise UserError(f"dpc needs a convolutional backbone whose forward_tokens gives (B, D, t, h, w); "
                            f"{self.cfg.backbone.name} gives {tuple(tokens.shape)}")
        maps = tokens.mean(dim=2)  # (B*N, D, h, w)
        return maps.view(b, n, *maps.shape[1:])

    def active_steps(self, step: StepInfo) -> int:
        """Future blocks predicted at this point of training (the curriculum)."""
        h = self.hparams
        if h.curriculum_fraction <= 0:
            return h.pred_steps
        grown = 1 + int((h.pred_steps - 1) * min(1.0, step.progress / h.curriculum_fraction) + 0.5)
        return min(h.pred_steps, grown)

    def predict_block(self, hidden: torch.Tensor) -> torch.Tensor:
        """ConvGRU state ``(B, D, h, w)`` -> the next block's predicted map ``(B, D, h, w)`` (DPC's ``phi``)."""
        return self.predict(hidden)

    def predict_future(self, maps: torch.Tensor, steps: int,
                       aggregate: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, N, D, h, w)`` maps -> predictions ``(B, steps, D, h, w)`` and the context ``(B, D, h, w)``.
        ``aggregate``: the ConvGRU to use (default ``self.aggregate``)."""
        aggregate = self.aggregate if aggregate is None else aggregate
        context_blocks = self.hparams.num_blocks - self.hparams.pred_steps
        hidden = None
        for i in range(context_blocks):
            hidden = aggregate(torch.relu(maps[:, i]), hidden)
        context = hidden
        predictions = []
        for _ in range(steps):
            p = self.predict_block(hidden)
            predictions.append(p)
            hidden = aggregate(torch.relu(p), hidden)  # feed the prediction back (sequential prediction)
        return torch.stack(predictions, dim=1), context

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        maps = self.block_features(batch["video"][0])  # (B, N, D, h, w), before ReLU as DPC's targets
        steps = self.active_steps(step)
        loss, top1, context = self.prediction_loss(maps, steps)
        return {"loss": loss, "top1": top1, "pred_steps": torch.tensor(float(steps)),
                "embedding": context.flatten(2).mean(dim=2).detach()}

    def prediction_loss(self, maps: torch.Tensor, steps: int,
                        aggregate: nn.Module | None = None) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Dense InfoNCE of the next ``steps`` blocks predicted from the context blocks of ``maps``
        ``(B, N, D, h, w)``. Returns ``(loss, top1, context (B, D, h, w))``."""
        h = self.hparams
        prediction, context = self.predict_future(maps, steps, aggregate)
        first = h.num_blocks - h.pred_steps
        target = maps[:, first:first + steps]  # (B, steps, D, h, w)
        # (B, I, D, h, w) -> (B, I, K, D) with K = h * w positions
        prediction = prediction.flatten(3).transpose(2, 3)
        target = target.flatten(3).transpose(2, 3)
        if h.normalize:
            prediction = nn.functional.normalize(prediction, dim=-1)
            target = nn.functional.normalize(target, dim=-1)
        loss, top1 = dpc_loss(prediction, target, h.temperature)
        return loss, top1, context
