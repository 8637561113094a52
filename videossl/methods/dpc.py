"""Dense Predictive Coding (Han, Xie and Zisserman, "Video Representation Learning by Dense Predictive Coding",
ICCV-W 2019).

A sample is ``num_blocks`` contiguous blocks of ``data.num_frames`` frames with one spatial crop (DPC: 8 blocks
x 5 frames, stride 3, 128 px, 2D3D-ResNet-18). Each block goes through the backbone to a feature map
``(D, h, w)`` (``forward_tokens``, averaged over the block's remaining time steps, DPC's ``avg_pool3d`` over
``last_duration``); a ConvGRU aggregates the ReLU'd maps of the first ``num_blocks - pred_steps`` blocks into a
context ``c``; a two-layer 1x1 conv network ``phi`` predicts the next block's map from ``c``, and the prediction
is fed back through the ConvGRU to predict the step after (sequential prediction, DPC eq. 2-3). The loss is the
dense InfoNCE of ``losses/dpc.py``: every predicted vector (batch, step, position) against every true one.

Curriculum of prediction steps: the paper grows the task from easy to hard; here the number of future blocks
predicted and scored grows linearly from 1 to ``pred_steps`` over the first ``curriculum_fraction`` of training
(0 turns it off: always ``pred_steps``), with the context fixed at the first ``num_blocks - pred_steps`` blocks.
DPC's released ``dpc/main.py`` trains with a fixed ``--pred_step 3`` and no schedule, so the real-data recipes use 0. At ``data.num_frames=1`` every block is one frame and DPC predicts future
frames' feature maps: still a meaningful task, so the T=1 case needs no special path.

Needs a convolutional backbone (``forward_tokens`` -> ``(B, D, t, h, w)``): ``r2d3d_18`` as in the paper,
``tiny_r3d`` for CPU runs. MemDPC's memory bank (Han et al., ECCV 2020) lives in ``memdpc.py``, which reuses
``predict_future`` / ``prediction_loss`` and overrides ``predict_block``.

DPC's targets are the backbone maps before any ReLU: its 2D3D-ResNet drops the ReLU after the last residual block
(``use_final_relu=False`` in TengdaHan/DPC ``backbone/resnet_2d3d.py``). ``r2d3d_*`` here keeps that ReLU, so the
targets are >= 0; the ConvGRU input (ReLU'd maps) is the same either way.

Fine-tuning: DPC and MemDPC fine-tune the backbone together with the ConvGRU on the aggregated context, so every
checkpoint also writes ``encoder_dpc.pt``, a ``dpc_aggregate`` backbone holding this method's backbone and
ConvGRU(s) (``extra_encoders``; ``recipes/eval/*_finetune_dpc*.yaml``, ``*_finetune_memdpc.yaml``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..backbones import Backbone
from ..backbones.dpc_aggregate import ConvGRUCell, DPCAggregate
from ..data.sampling import ContiguousBlockSampler, ViewSpec
from ..errors import UserError
from ..losses.dpc import dpc_loss
from ..transforms.video import build_video_transform
from .base import Method, MethodConfig, StepInfo


@dataclass
class DPCConfig(MethodConfig):
    name: str = "dpc"
    num_blocks: int = 8  # DPC: 8 blocks (5 context + 3 predicted)
    pred_steps: int = 3  # DPC: predict 3 future blocks
    gru_kernel: int = 1  # DPC's ConvGRU uses 1x1 convolutions
    gru_dropout: float = 0.0  # DPC's code (backbone/convrnn.py): Dropout(0.1) on the hidden state after each step
    init_gain: float = 0.0  # >0: orthogonal weights (this gain), zero biases for ConvGRU and phi; DPC's code: 1.0
    temperature: float = 1.0  # DPC (and MemDPC's released code): raw dot products
    normalize: bool = False  # True: L2-normalise predictions and targets (cosine scores / temperature)
    # True: negatives from every process's batch (the global batch); False: this process's batch only, as DPC's
    # and MemDPC's code, which score each nn.DataParallel replica's sub-batch on its own
    gather_negatives: bool = True
    curriculum_fraction: float = 0.0  # 0: always pred_steps; else grow 1 -> pred_steps over this training fraction
    crop_scale_min: float = 0.3  # DPC: random crop + flip + colour jitter, same on all blocks
    colour_strength: float = 0.5  # colour jitter (0.8 s, 0.8 s, 0.8 s, 0.2 s), see transforms.video.colour_steps
    jitter_p: float = 0.8  # probability of the colour jitter (DPC's code: 1.0)
    gray_p: float = 0.2  # probability of grayscale (DPC's code: 0.5, MemDPC's: 0.25, drawn per frame there)


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
        self.aggregate = ConvGRUCell(d, d, h.gru_kernel, h.gru_dropout)
        self.aggregate_backward: nn.Module | None = None  # MemDPC's backward ConvGRU
        self.predict = nn.Sequential(nn.Conv2d(d, d, 1), nn.ReLU(inplace=True), nn.Conv2d(d, d, 1))  # DPC's phi
        self.init_heads()

    def views(self) -> ViewSpec:
        d, h = self.cfg.data, self.hparams
        # One view holding all blocks, so one random crop / jitter covers every block (DPC: same crop on the
        # whole sequence; its colour jitter is per frame, consistent here).
        transform = build_video_transform("ssl", d.crop_size, scale=(h.crop_scale_min, 1.0),
                                          strength=h.colour_strength, jitter_p=h.jitter_p, gray_p=h.gray_p,
                                          blur_p=0.0)
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
        maps = self.block_features(batch["video"][0])  # (B, N, D, h, w): the targets, not ReLU'd again
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
        loss, top1 = dpc_loss(prediction, target, h.temperature, gather=h.gather_negatives)
        return loss, top1, context

    def init_heads(self) -> None:
        """``init_gain > 0``: orthogonal weights and zero biases for the ConvGRU(s) and ``phi`` (DPC's code: gain
        1, MemDPC's: 0.1, ``_initialize_weights``); the backbone keeps its own initialisation."""
        if self.hparams.init_gain > 0:
            for module in (self.aggregate, self.aggregate_backward, self.predict):
                if module is not None:
                    orthogonal_init(module, self.hparams.init_gain)

    def extra_encoders(self) -> dict[str, tuple[Backbone, str, dict[str, Any]]]:
        """``encoder_dpc.pt``: the backbone + ConvGRU(s) as one ``dpc_aggregate`` backbone, the network DPC and
        MemDPC fine-tune (``backbones/dpc_aggregate.py``). It holds this method's own modules (no copy)."""
        h = self.hparams
        name, backbone_kwargs = self.encoder_spec()
        kwargs = {"backbone": name, "backbone_kwargs": backbone_kwargs, "num_blocks": int(h.num_blocks),
                  "block_frames": int(self.cfg.data.num_frames), "gru_kernel": int(h.gru_kernel),
                  "gru_dropout": float(h.gru_dropout), "bidirectional": self.aggregate_backward is not None}
        composite = DPCAggregate(**kwargs, encoder=self.backbone, aggregate=self.aggregate,
                                 aggregate_backward=self.aggregate_backward)
        return {"dpc": (composite, "dpc_aggregate", kwargs)}


def orthogonal_init(module: nn.Module, gain: float) -> None:
    """Orthogonal weights (``gain``) and zero biases for every parameter of ``module`` (DPC / MemDPC's code)."""
    for name, param in module.named_parameters():
        if name.endswith("bias"):
            nn.init.zeros_(param)
        elif param.dim() >= 2:
            nn.init.orthogonal_(param, gain)
