"""Space-time cubic puzzles (Kim, Cho and Kweon, "Self-Supervised Video Representation Learning with Space-Time
Cubic Puzzles", AAAI 2019).

A clip is cut into a grid of cuboids, 2x2 in space and ``time_parts`` (4) in time. Per sample, four cuboids
are taken along one axis, drawn at random as in the paper: the 2x2 spatial cuboids of one time chunk, or the 4
time chunks at one spatial cell. A cuboid smaller than its cell is cropped at a random place inside it (gaps
and jitter, as jigsaw tiles), the four are shuffled by one permutation of a maximal-Hamming set (with 4 pieces
and 24 permutations that set is all of 4!, the paper's 24 classes) and a shared 3D backbone embeds each; the
concatenated features classify the permutation.

At ``data.num_frames < time_parts`` only the spatial axis is used (a 2x2 spatial puzzle of the whole clip, an
image jigsaw at T=1): the documented fallback that keeps the T=1 case meaningful.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..data.sampling import RandomClipSampler, ViewSpec
from ..errors import UserError
from ..heads import ClassifierHead
from ..transforms.puzzle import crop_tiles, gather_permuted, maximal_hamming_permutations
from ..transforms.video import build_video_transform
from .base import Method, MethodConfig, StepInfo


@dataclass
class CubicPuzzleConfig(MethodConfig):
    name: str = "cubic_puzzle"
    time_parts: int = 4  # Kim et al.: 2x2x4 grid of cuboids, 4 pieces per puzzle
    num_permutations: int = 24  # 4! = 24 classes (all permutations are then the maximal-Hamming set)
    cell_fraction: float = 0.8  # spatial crop of each cuboid inside its cell (gap + jitter)
    hidden_dim: int = 512
    dropout: float = 0.5
    permutation_seed: int = 0
    crop_scale_min: float = 0.3


class CubicPuzzle(Method):
    Config = CubicPuzzleConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if h.time_parts != 4:
            raise UserError(f"method.time_parts must be 4 (4 pieces per puzzle on either axis), got {h.time_parts}")
        self.register_buffer("permutations", torch.tensor(
            maximal_hamming_permutations(4, h.num_permutations, h.permutation_seed)), persistent=False)
        self.tile = max(1, int(cfg.data.crop_size // 2 * h.cell_fraction))
        self.head = ClassifierHead(4 * self.backbone.num_features, len(self.permutations), h.hidden_dim, h.dropout)

    def views(self) -> ViewSpec:
        d = self.cfg.data
        transform = build_video_transform("ssl", d.crop_size, scale=(self.hparams.crop_scale_min, 1.0), blur_p=0.0)
        return ViewSpec(sampler=RandomClipSampler(d.num_frames, d.frame_stride), transforms={"clip": transform})

    def cuboids(self, clips: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> ``(B, time_chunks, 4 cells, C, T/time_chunks, tile, tile)``."""
        t = clips.shape[2]
        chunks = self.hparams.time_parts if t >= self.hparams.time_parts else 1
        length = t // chunks
        return torch.stack([crop_tiles(clips[:, :, j * length:(j + 1) * length], (2, 2), self.tile)
                            for j in range(chunks)], dim=1)

    def make_puzzles(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Shuffled pieces ``(B, 4, C, t, tile, tile)``, permutation labels ``(B,)`` and axis ``(B,)`` (1 = time)."""
        grid = self.cuboids(clips)
        b, chunks = grid.shape[:2]
        rows = torch.arange(b, device=clips.device)
        temporal = torch.randint(0, 2, (b,), device=clips.device).bool() & (chunks == 4)
        pick_time = torch.randint(0, chunks, (b,), device=clips.device)
        pick_cell = torch.randint(0, 4, (b,), device=clips.device)
        spatial_pieces = grid[rows, pick_time]  # (B, 4 cells, ...)
        temporal_pieces = grid[rows, :, pick_cell]  # (B, 4 chunks, ...) (when chunks == 4)
        axis = temporal.view(b, *([1] * (spatial_pieces.dim() - 1)))
        pieces = torch.where(axis, temporal_pieces, spatial_pieces) if chunks == 4 else spatial_pieces
        labels = torch.randint(0, len(self.permutations), (b,), device=clips.device)
        return gather_permuted(pieces, self.permutations[labels]), labels, temporal.long()

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        puzzles, labels, axis = self.make_puzzles(batch["video"][0])
        b = puzzles.shape[0]
        features = self.backbone(puzzles.flatten(0, 1)).view(b, 4, -1)  # (B, 4, D)
        logits = self.head(features.flatten(1))
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"loss": loss, "accuracy": accuracy.detach(), "temporal_fraction": axis.float().mean(),
                "embedding": features.mean(dim=1).detach()}
