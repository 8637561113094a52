"""Memory-augmented Dense Predictive Coding (Han, Xie and Zisserman, "Memory-augmented Dense Predictive Coding for
Video Representation Learning", ECCV 2020).

MemDPC is DPC (``dpc.py``: blocks -> per-block maps -> ConvGRU context -> sequential prediction -> dense InfoNCE)
with one change in the predictor: instead of regressing the next block's feature map, ``phi`` outputs, at every
position, logits over the ``memory_slots`` (K) slots of a learnable compressive memory ``M`` ``(K, D)``; the
prediction is the addressed combination of the slots (MemDPC eq. 2-3)::

    p_{t+1} = softmax(phi(c_t))            (B, K, h, w), softmax over the K slots at each position
    z_hat_{t+1} = sum_k p_{t+1, k} M_k     (B, D, h, w)  = p^T @ M position by position

so a prediction is a convex combination of memory slots: the model can hedge between several plausible futures
(the paper's motivation: the future is multi-modal) instead of regressing to their mean. The prediction is fed
back through the ConvGRU as in DPC, and the loss is DPC's dense InfoNCE (``losses/dpc.py``), unchanged.

Bidirectional (MemDPC's released code, ``MemDPC_BD``): a second ConvGRU reads the blocks in reverse order and
predicts the first ``pred_steps`` blocks backwards; the predictor ``phi`` and the memory are shared by both
directions, and the two losses are summed. ``bidirectional: false`` keeps the forward direction only.

Settings from the released code (TengdaHan/MemDPC): memory of 1024 slots initialised from N(0, 1); raw dot
products (no normalisation, temperature 1); ConvGRU and ``phi`` weights orthogonal with gain 0.1, biases 0;
Dropout(0.1) on the ConvGRU state after each step (``gru_dropout``, ``backbone/convrnn.py``); per-GPU negatives;
Adam, lr 1e-3, weight decay 1e-5; 8 blocks x 5 frames, stride 3, predict 3. ``memory_slots: 0`` bypasses the
memory (``phi`` regresses the map directly, as in DPC): with ``bidirectional: false`` this is DPC exactly.
DPC's curriculum of prediction steps (``curriculum_fraction``) is inherited; MemDPC does not use it (default 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..errors import UserError
from .base import StepInfo
from .dpc import ConvGRUCell, DPC, DPCConfig


@dataclass
class MemDPCConfig(DPCConfig):
    name: str = "memdpc"
    memory_slots: int = 1024  # MemDPC: 1024-slot memory (its --mem_size default); 0 bypasses the memory (DPC)
    bidirectional: bool = True  # MemDPC's code (MemDPC_BD): forward + backward prediction, losses summed
    init_gain: float = 0.1  # MemDPC's code: orthogonal init, gain 0.1, of the ConvGRUs and phi; 0 keeps PyTorch's


class MemoryBank(nn.Module):
    """A learnable compressive memory of ``slots`` vectors of ``dim`` features, read by soft addressing.

    ``forward(logits)``: ``(B, K, h, w)`` addressing logits -> ``(B, D, h, w)`` = softmax over K, then
    ``weights @ memory`` at each position."""

    def __init__(self, slots: int, dim: int):
        super().__init__()
        self.memory = nn.Parameter(torch.randn(slots, dim))  # MemDPC's code: torch.randn(mem_size, feature_size)

    def address(self, logits: torch.Tensor) -> torch.Tensor:
        """``(B, K, h, w)`` logits -> addressing weights ``(B, K, h, w)`` summing to 1 over the K slots."""
        if logits.shape[1] != self.memory.shape[0]:
            raise ValueError(f"MemoryBank has {self.memory.shape[0]} slots, got logits {tuple(logits.shape)}")
        return torch.softmax(logits, dim=1)

    def forward(self, logits: torch.Tensor) -> torch.Tensor:
        weights = self.address(logits)
        return torch.einsum("bkhw,kd->bdhw", weights, self.memory.to(weights.dtype))


class MemDPC(DPC):
    Config = MemDPCConfig

    def __init__(self, cfg):
        super().__init__(cfg)  # DPC's checks, ConvGRU ``aggregate`` and ``phi`` (``predict``)
        h = self.hparams
        if h.memory_slots < 0:
            raise UserError(f"method.memory_slots must be >= 0 (0 bypasses the memory), got {h.memory_slots}")
        d = self.backbone.num_features
        self.memory: MemoryBank | None = None
        if h.memory_slots > 0:
            # phi's last layer addresses the memory: D -> K logits per position (MemDPC's network_pred)
            self.predict[-1] = nn.Conv2d(d, h.memory_slots, 1)
            self.memory = MemoryBank(h.memory_slots, d)
        self.aggregate_backward = ConvGRUCell(d, d, h.gru_kernel, h.gru_dropout) if h.bidirectional else None
        self.init_heads()  # orthogonal (init_gain) ConvGRUs and phi, the memory-addressing layer included

    def predict_block(self, hidden: torch.Tensor) -> torch.Tensor:
        """ConvGRU state ``(B, D, h, w)`` -> the memory read ``(B, D, h, w)`` addressed by ``phi(hidden)``."""
        out = self.predict(hidden)
        return out if self.memory is None else self.memory(out)

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        maps = self.block_features(batch["video"][0])  # (B, N, D, h, w)
        steps = self.active_steps(step)
        loss, top1, context = self.prediction_loss(maps, steps)
        out = {"top1": top1, "pred_steps": torch.tensor(float(steps)),
               "embedding": context.flatten(2).mean(dim=2).detach()}
        if self.aggregate_backward is not None:
            # the blocks in reverse order: the last N - pred_steps blocks predict the first ones, backwards
            loss_backward, top1_backward, _ = self.prediction_loss(maps.flip(1), steps, self.aggregate_backward)
            out["loss_forward"], out["loss_backward"] = loss.detach(), loss_backward.detach()
            out["top1_backward"] = top1_backward
            loss = loss + loss_backward  # MemDPC's code: forward + backward
        out["loss"] = loss
        return out

