"""DPC's aggregation network as a backbone, so fine-tuning can train it as the DPC and MemDPC papers did.

Han, Xie and Zisserman fine-tune the 2D3D-ResNet *together with* the ConvGRU it was pretrained with (DPC, ICCV-W
2019; MemDPC, ECCV 2020). Their classifier (``LC`` in TengdaHan/DPC ``eval/model_3d_lc.py`` and TengdaHan/MemDPC
``eval/model_lc.py``) is, for a clip of N blocks x T frames::

    block maps   = ReLU(backbone(block)), averaged over the block's remaining time steps   (N, D, h, w)
    context      = last hidden state of the ConvGRU run over the N maps, averaged in space  (D,)
                   (MemDPC: a second ConvGRU over the reversed blocks, concatenated:         (2D,))
    logits       = Linear(Dropout(BatchNorm1d(context)))

``DPCAggregate`` is everything up to and including the ``BatchNorm1d`` (``final_bn``); the evaluation's
``VideoClassifier`` adds the dropout and the linear layer. Its input is one clip ``(B, C, N*T, H, W)`` with the
blocks contiguous in time (what the evaluation samples with ``data.num_frames = N*T``); it splits the time axis
into the N blocks itself and refuses any other frame count.

DPC / MemDPC pretraining writes it as ``encoder_dpc.pt`` next to ``encoder.pt`` (``Method.extra_encoders``): the
method's own backbone and ConvGRU(s), and a fresh ``final_bn`` (the reference builds that layer at fine-tuning).
Its ConvGRU is ``ConvGRUCell`` below, which the methods share (``methods/dpc.py``).
"""
from __future__ import annotations

from typing import Any

import torch
from torch import nn

from ..errors import UserError
from .base import Backbone


class ConvGRUCell(nn.Module):
    """One convolutional GRU step (Ballas et al., ICLR 2016) on ``(B, D, h, w)`` maps, as in DPC's
    ``backbone/convrnn.py``: ``h' = (1 - z) h + z tanh(W [x, r h])``, gates ``r, z = sigmoid(W [x, h])``.

    ``dropout``: DPC's ``ConvGRU`` applies ``Dropout(0.1)`` to the hidden state after every step (pretraining
    and fine-tuning alike); the dropped-out state is what the next step and the predictor see."""

    def __init__(self, in_dim: int, hidden_dim: int, kernel: int = 1, dropout: float = 0.0):
        super().__init__()
        pad = kernel // 2
        self.gates = nn.Conv2d(in_dim + hidden_dim, 2 * hidden_dim, kernel, padding=pad)  # reset, update
        self.candidate = nn.Conv2d(in_dim + hidden_dim, hidden_dim, kernel, padding=pad)
        self.dropout = nn.Dropout(dropout)
        self.hidden_dim = hidden_dim

    def forward(self, x: torch.Tensor, hidden: torch.Tensor | None) -> torch.Tensor:
        if hidden is None:
            hidden = x.new_zeros(x.shape[0], self.hidden_dim, *x.shape[2:])
        reset, update = torch.sigmoid(self.gates(torch.cat([x, hidden], dim=1))).chunk(2, dim=1)
        candidate = torch.tanh(self.candidate(torch.cat([x, reset * hidden], dim=1)))
        return self.dropout((1 - update) * hidden + update * candidate)


class DPCAggregate(Backbone):
    """``(B, C, num_blocks * block_frames, H, W)`` -> aggregated context ``(B, D)`` (``(B, 2D)`` bidirectional).

    ``backbone`` / ``backbone_kwargs``: the per-block network (a ``BACKBONES`` name whose ``forward_tokens`` gives
    ``(B, D, t, h, w)``: ``r2d3d_18`` / ``r2d3d_34`` as in the papers, ``tiny_r3d`` for CPU tests).
    ``encoder`` / ``aggregate`` / ``aggregate_backward``: existing modules to hold instead of fresh ones (the
    pretraining method's own, when it saves this composite); not saved as kwargs.
    """

    def __init__(self, backbone: str = "r2d3d_18", backbone_kwargs: dict[str, Any] | None = None,
                 num_blocks: int = 8, block_frames: int = 5, gru_kernel: int = 1, gru_dropout: float = 0.1,
                 bidirectional: bool = False, final_bn: bool = True, *, encoder: Backbone | None = None,
                 aggregate: nn.Module | None = None, aggregate_backward: nn.Module | None = None):
        super().__init__()
        if num_blocks < 1 or block_frames < 1:
            raise UserError(f"dpc_aggregate: num_blocks and block_frames must be >= 1, got {num_blocks}, {block_frames}")
        if encoder is None:  # the registry entry (backbones/__init__.py: build_dpc_aggregate) builds it by name
            raise ValueError("DPCAggregate needs its per-block encoder: build it with create_backbone('dpc_aggregate', "
                             f"backbone={backbone!r}, ...)")
        self.encoder = encoder
        self.num_blocks, self.block_frames = int(num_blocks), int(block_frames)
        d = encoder.num_features
        self.aggregate = aggregate if aggregate is not None else ConvGRUCell(d, d, gru_kernel, gru_dropout)
        self.aggregate_backward = None
        if bidirectional:
            self.aggregate_backward = (aggregate_backward if aggregate_backward is not None
                                       else ConvGRUCell(d, d, gru_kernel, gru_dropout))
        self.num_features = d * (2 if bidirectional else 1)
        # LC's final_bn (weight 1, bias 0); in eval mode with fresh statistics it is the identity
        self.final_bn = nn.BatchNorm1d(self.num_features) if final_bn else nn.Identity()
        self.tap_names = tuple(getattr(encoder, "tap_names", ()))

    def blocks(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, N*T, H, W)`` -> ``(B*N, C, T, H, W)``, block-major per video."""
        b, c, frames, height, width = x.shape
        n, t = self.num_blocks, self.block_frames
        if frames != n * t:
            raise UserError(f"dpc_aggregate takes clips of num_blocks x block_frames = {n} x {t} = {n * t} frames, "
                            f"got {frames}: set data.num_frames={n * t} (and the pretraining's frame_stride)")
        return x.reshape(b, c, n, t, height, width).transpose(1, 2).reshape(b * n, c, t, height, width)

    def block_maps(self, x: torch.Tensor) -> torch.Tensor:
        """``(B, C, N*T, H, W)`` -> ReLU'd, time-averaged block maps ``(B, N, D, h, w)`` (LC: ReLU, then
        ``avg_pool3d`` over the block's ``ceil(T/4)`` remaining time steps)."""
        tokens = self.encoder.forward_tokens(self.blocks(x))
        if tokens.dim() != 5:
            raise UserError(f"dpc_aggregate needs a convolutional backbone whose forward_tokens gives "
                            f"(B, D, t, h, w), got {tuple(tokens.shape)}")
        maps = torch.relu(tokens).mean(dim=2)
        return maps.view(x.shape[0], self.num_blocks, *maps.shape[1:])

    @staticmethod
    def run_gru(cell: nn.Module, maps: torch.Tensor) -> torch.Tensor:
        """The ConvGRU over ``(B, N, D, h, w)`` maps in order -> last hidden state averaged in space ``(B, D)``."""
        hidden = None
        for i in range(maps.shape[1]):
            hidden = cell(maps[:, i], hidden)
        return hidden.flatten(2).mean(dim=2)

    def pooled_features(self, x: torch.Tensor) -> torch.Tensor:
        maps = self.block_maps(x)
        context = self.run_gru(self.aggregate, maps)
        if self.aggregate_backward is not None:  # MemDPC's LC: forward and reversed contexts, concatenated
            context = torch.cat([context, self.run_gru(self.aggregate_backward, maps.flip(1))], dim=1)
        return self.final_bn(context)

    def forward_tokens(self, x: torch.Tensor) -> torch.Tensor:
        """The ReLU'd, time-averaged per-block maps as ``(B, D, N, h, w)`` (the block axis as time)."""
        return self.block_maps(x).transpose(1, 2)

    def feature_taps(self, x: torch.Tensor, names: list[str] | None = None) -> dict[str, torch.Tensor]:
        """The per-block backbone's taps, on the ``B*N`` blocks."""
        return self.encoder.feature_taps(self.blocks(x), names)
