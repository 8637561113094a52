"""Puzzles: cutting a clip ``(B, C, T, H, W)`` into tiles and the permutation sets that shuffle them.

- ``maximal_hamming_permutations``: the permutation sets of jigsaw (Noroozi & Favaro, ECCV 2016) and
  space-time cubic puzzles (Kim et al., AAAI 2019), chosen greedily for maximal minimum Hamming distance.
- ``grid_cells`` / ``crop_tiles``: spatial or spatio-temporal pieces of a clip, with gaps and jitter.
- ``gather_permuted``: the pieces of every sample put in its permutation's order.
"""
from __future__ import annotations

import itertools
from functools import lru_cache

import numpy as np
import torch

from ..errors import UserError


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
