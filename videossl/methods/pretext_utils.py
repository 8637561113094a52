"""Pieces shared by the classic pretext-task methods (order, pace, puzzles, rotation, ...).

- ``maximal_hamming_permutations``: the permutation sets of jigsaw (Noroozi & Favaro, ECCV 2016) and
  space-time cubic puzzles (Kim et al., AAAI 2019), chosen greedily for maximal minimum Hamming distance.
- ``frame_motion`` / ``camera_only_motion``: cheap motion measures from frame differences (Shuffle and Learn's
  high-motion windows, the arrow of time's static and camera-motion-only clips).
- ``ClassifierHead`` and ``PairwiseFusionHead``: the small classification heads these papers put on top of
  per-frame / per-clip features.
- ``grid_cells`` / ``crop_tiles``: cutting a clip ``(B, C, T, H, W)`` into spatial or spatio-temporal pieces.
- ``require_frames``: the one-line error temporal tasks give at T=1.
"""
from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import torch
from torch import nn

from ..errors import UserError


# ----------------------------------------------------------------------------------------------------
# Permutation sets
# ----------------------------------------------------------------------------------------------------


@lru_cache(maxsize=8)
def maximal_hamming_permutations(num_items: int, count: int, seed: int = 0) -> tuple[tuple[int, ...], ...]:
    """``count`` permutations of ``range(num_items)`` with a maximal minimum pairwise Hamming distance.

    Noroozi & Favaro (ECCV 2016), algorithm 1 ("maximal" variant): start from one random permutation, then
    repeatedly add the permutation whose minimum Hamming distance to the chosen ones is largest (ties: the
    first in a seeded random order). Deterministic for a ``seed``; the identity is not forced in. For
    ``count >= num_items!`` it returns every permutation (in lexicographic order). Jigsaw: 9 tiles, 100
    permutations (min distance 6 or more with this greedy choice).
    """
    if num_items < 2 or count < 1:
        raise ValueError(f"need num_items >= 2 and count >= 1, got {num_items}, {count}")
    everything = np.array(list(itertools.permutations(range(num_items))), dtype=np.int8)  # (n!, n)
    if count >= len(everything):
        return tuple(tuple(int(i) for i in p) for p in everything)
    rng = np.random.default_rng(seed)
    everything = everything[rng.permutation(len(everything))]
    chosen = [0]
    min_distance = (everything != everything[0]).sum(axis=1)  # (n!,) distance to the chosen set
    for _ in range(count - 1):
        best = int(np.argmax(min_distance))
        chosen.append(best)
        min_distance = np.minimum(min_distance, (everything != everything[best]).sum(axis=1))
    return tuple(tuple(int(i) for i in everything[c]) for c in chosen)


def min_hamming_distance(permutations: tuple[tuple[int, ...], ...]) -> int:
    """The smallest Hamming distance between two permutations of the set (a quality measure of the set)."""
    p = np.array(permutations)
    d = (p[:, None, :] != p[None, :, :]).sum(-1)
    np.fill_diagonal(d, p.shape[1] + 1)
    return int(d.min())


# ----------------------------------------------------------------------------------------------------
# Motion from frame differences
# ----------------------------------------------------------------------------------------------------


def frame_motion(clip: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between consecutive frames: ``(B, C, T, H, W)`` -> ``(B,)`` (0 when T=1).

    The cheap motion measure used to rank windows (Shuffle and Learn picks high-motion windows; Misra et al.
    use optical flow magnitude, frame differences are the cheap stand-in the issue asks for).
    """
    if clip.shape[2] < 2:
        return clip.new_zeros(clip.shape[0])
    return (clip[:, :, 1:] - clip[:, :, :-1]).abs().mean(dim=(1, 2, 3, 4))


def camera_only_motion(clip: torch.Tensor, max_shift: int = 2, ratio: float = 0.5) -> torch.Tensor:
    """Bool ``(B,)``: True when a global image translation explains most of the motion of a clip.

    Wei et al. (CVPR 2018) drop clips whose motion is only camera motion (they fit homographies to flow);
    here, cheaply: for each pair of consecutive frames the best integer shift within ``+-max_shift`` pixels
    is found, and a clip is camera-only when the aligned residual is below ``ratio`` times the raw
    difference (a pure pan leaves almost nothing after alignment; an object moving on a still background
    does not align away). Border pixels (``max_shift`` wide) are left out of both measures.
    """
    b, _, t, h, w = clip.shape
    if t < 2 or h <= 2 * max_shift or w <= 2 * max_shift:
        return torch.zeros(b, dtype=torch.bool, device=clip.device)
    m = max_shift
    previous, current = clip[:, :, :-1], clip[:, :, 1:]
    inner = current[..., m:h - m, m:w - m]
    raw = (inner - previous[..., m:h - m, m:w - m]).abs().mean(dim=(1, 3, 4))  # (B, T-1)
    best = raw
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            shifted = previous[..., m + dy:h - m + dy, m + dx:w - m + dx]
            best = torch.minimum(best, (inner - shifted).abs().mean(dim=(1, 3, 4)))
    moving = raw.sum(1) > 1e-6
    return moving & (best.sum(1) < ratio * raw.sum(1))


# ----------------------------------------------------------------------------------------------------
# Heads
# ----------------------------------------------------------------------------------------------------


class ClassifierHead(nn.Sequential):
    """``(B, in_dim)`` -> ``(B, num_classes)``: Linear-BN-ReLU-Dropout-Linear (``hidden_dim=0``: one Linear).

    The fc7 / fc8 stack these papers put on concatenated features (Misra et al. 2016, Noroozi & Favaro 2016).
    """

    def __init__(self, in_dim: int, num_classes: int, hidden_dim: int = 512, dropout: float = 0.0):
        if hidden_dim <= 0:
            super().__init__(nn.Linear(in_dim, num_classes))
        else:
            super().__init__(nn.Linear(in_dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim),
                             nn.ReLU(inplace=True), nn.Dropout(dropout), nn.Linear(hidden_dim, num_classes))


class PairwiseFusionHead(nn.Module):
    """Order classification from ``N`` per-element features by pairwise feature fusion.

    OPN (Lee et al., ICCV 2017, fig. 3) and VCOP (Xu et al., CVPR 2019, fig. 2): every pair ``(i, j), i < j``
    of element features is concatenated and mapped by a shared ``Linear(2D, pair_dim) + ReLU`` (OPN's fc7,
    VCOP's 512-d pair layer); the ``N (N - 1) / 2`` pair features are concatenated, dropped out (VCOP: 0.5)
    and classified by one Linear. ``(B, N, D)`` -> ``(B, num_classes)``.
    """

    def __init__(self, dim: int, num_elements: int, num_classes: int, pair_dim: int = 512, dropout: float = 0.5):
        super().__init__()
        self.pairs = list(itertools.combinations(range(num_elements), 2))
        self.pair = nn.Sequential(nn.Linear(2 * dim, pair_dim), nn.ReLU(inplace=True))
        self.dropout = nn.Dropout(dropout)
        self.classify = nn.Linear(pair_dim * len(self.pairs), num_classes)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        i = torch.tensor([p[0] for p in self.pairs], device=features.device)
        j = torch.tensor([p[1] for p in self.pairs], device=features.device)
        fused = self.pair(torch.cat([features[:, i], features[:, j]], dim=-1))  # (B, P, pair_dim)
        return self.classify(self.dropout(fused.flatten(1)))


# ----------------------------------------------------------------------------------------------------
# Cutting clips into pieces
# ----------------------------------------------------------------------------------------------------


def grid_cells(size: int, parts: int) -> list[tuple[int, int]]:
    """``parts`` equal ``(start, length)`` cells along one axis of ``size`` (the remainder is dropped)."""
    length = size // parts
    if length < 1:
        raise UserError(f"cannot cut an axis of {size} into {parts} parts (crop or clip too small)")
    return [(k * length, length) for k in range(parts)]


def crop_tiles(clip: torch.Tensor, grid: tuple[int, int], tile: int, jitter: bool = True,
               generator: torch.Generator | None = None) -> torch.Tensor:
    """Cut every clip of ``(B, C, T, H, W)`` into a ``grid[0] x grid[1]`` grid and take a ``tile x tile``
    crop inside each cell (at a random place per sample and cell when ``jitter``, else centred).

    The gaps and jitter between tiles stop a network from solving puzzles by matching edges (Noroozi &
    Favaro 2016: 64 px tiles in 75 px cells; Doersch et al. 2015: gaps and jitter). Returns
    ``(B, G, C, T, tile, tile)`` with the cells in row-major order.
    """
    b, _, _, h, w = clip.shape
    rows, cols = grid_cells(h, grid[0]), grid_cells(w, grid[1])
    if tile > min(rows[0][1], cols[0][1]):
        raise UserError(f"tile size {tile} is larger than a grid cell ({rows[0][1]}x{cols[0][1]} px)")
    tiles = []
    for top, height in rows:
        for left, width in cols:
            if jitter:
                dy = torch.randint(0, height - tile + 1, (b,), generator=generator).tolist()
                dx = torch.randint(0, width - tile + 1, (b,), generator=generator).tolist()
            else:
                dy, dx = [(height - tile) // 2] * b, [(width - tile) // 2] * b
            tiles.append(torch.stack([clip[n, :, :, top + dy[n]:top + dy[n] + tile, left + dx[n]:left + dx[n] + tile]
                                      for n in range(b)]))
    return torch.stack(tiles, dim=1)


def gather_permuted(pieces: torch.Tensor, permutations: torch.Tensor) -> torch.Tensor:
    """``pieces`` ``(B, G, ...)`` and ``permutations`` ``(B, G)`` -> ``out[b, k] = pieces[b, permutations[b, k]]``."""
    index = permutations.view(*permutations.shape, *([1] * (pieces.dim() - 2))).expand_as(pieces)
    return torch.gather(pieces, 1, index)


def require_frames(method: str, num_frames: int, minimum: int = 2) -> None:
    """Temporal tasks have nothing to learn from one frame: say so in one line instead of training on noise."""
    if num_frames < minimum:
        raise UserError(f"method {method} is a temporal task and needs data.num_frames >= {minimum}, got {num_frames}")
