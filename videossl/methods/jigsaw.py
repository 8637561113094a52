"""Jigsaw puzzles (Noroozi and Favaro, "Unsupervised Learning of Visual Representations by Solving Jigsaw
Puzzles", ECCV 2016).

A crop (a clip at T>1: every frame cut alike, spatial puzzles of a clip) is cut into a 3x3 grid; a tile smaller
than its cell is taken at a random place inside each cell (gaps and jitter, so edges cannot be matched: the
paper's 64 px tiles in 75 px cells, ``tile_fraction`` 0.85), each tile normalised on its own (the paper's
per-tile normalisation against low-level cues), and the tiles are shuffled by one permutation of a set of 100
chosen for maximal Hamming distance (``maximal_hamming_permutations``). The backbone embeds each tile (shared
weights, the context-free network), the 9 features are concatenated and a classifier head names the
permutation (100 classes).
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
class JigsawConfig(MethodConfig):
    name: str = "jigsaw"
    grid: int = 3  # Noroozi & Favaro: 3x3 tiles
    num_permutations: int = 100  # Noroozi & Favaro: 100 permutations of maximal Hamming distance
    tile_fraction: float = 0.85  # 64 px tiles in 75 px cells
    normalize_tiles: bool = True  # each tile to zero mean, unit std on its own
    hidden_dim: int = 1024  # the paper's fc7 has 4096 units on concatenated 512-d tile features
    dropout: float = 0.5
    permutation_seed: int = 0
    crop_scale_min: float = 0.3


def normalize_pieces(pieces: torch.Tensor) -> torch.Tensor:
    """Zero mean, unit std per piece (over C, T, H, W): ``(B, G, C, T, h, w)`` -> same."""
    dims = tuple(range(2, pieces.dim()))
    return (pieces - pieces.mean(dim=dims, keepdim=True)) / pieces.std(dim=dims, keepdim=True).clamp(min=1e-5)


class Jigsaw(Method):
    Config = JigsawConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if h.grid < 2 or not 0 < h.tile_fraction <= 1:
            raise UserError(f"method.grid must be >= 2 and tile_fraction in (0, 1], got {h.grid}, {h.tile_fraction}")
        n = h.grid * h.grid
        self.register_buffer("permutations", torch.tensor(
            maximal_hamming_permutations(n, h.num_permutations, h.permutation_seed)), persistent=False)
        self.tile = max(1, int(cfg.data.crop_size // h.grid * h.tile_fraction))
        self.head = ClassifierHead(n * self.backbone.num_features, len(self.permutations), h.hidden_dim, h.dropout)

    def views(self) -> ViewSpec:
        d = self.cfg.data
        transform = build_video_transform("ssl", d.crop_size, scale=(self.hparams.crop_scale_min, 1.0), blur_p=0.0)
        return ViewSpec(sampler=RandomClipSampler(d.num_frames, d.frame_stride), transforms={"clip": transform})

    def make_puzzles(self, clips: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """``(B, C, T, H, W)`` -> shuffled tiles ``(B, G, C, T, tile, tile)`` and permutation labels ``(B,)``."""
        g = self.hparams.grid
        tiles = crop_tiles(clips, (g, g), self.tile)
        if self.hparams.normalize_tiles:
            tiles = normalize_pieces(tiles)
        labels = torch.randint(0, len(self.permutations), (clips.shape[0],), device=clips.device)
        return gather_permuted(tiles, self.permutations[labels]), labels

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        puzzles, labels = self.make_puzzles(batch["video"][0])
        b, n = puzzles.shape[:2]
        features = self.backbone(puzzles.flatten(0, 1)).view(b, n, -1)  # (B, G, D)
        logits = self.head(features.flatten(1))
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(1) == labels).float().mean()
        return {"loss": loss, "accuracy": accuracy.detach(), "embedding": features.mean(dim=1).detach()}
