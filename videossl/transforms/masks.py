"""Token masks over a video ViT's patch grid: V-JEPA's multi-block 3D masks (tensor in, tensor out).

Bardes et al., "Revisiting Feature Prediction for Learning Visual Representations from Video" (V-JEPA, 2024,
https://arxiv.org/abs/2404.08471), sec. 3.2: a mask set draws ``num_blocks`` blocks of one shape (a spatial scale
and an aspect ratio; with temporal scale 1 every block spans the whole clip, a tube) at random positions; their
union is the region to predict, its complement the context the encoder sees. V-JEPA trains with two sets per clip:
short-range (8 blocks of 15% of the frame) and long-range (2 blocks of 70%). Transcribed from
facebookresearch/jepa ``src/masks/multiblock3d.py`` (``_MaskGenerator``):

* one block shape ``(t, h, w)`` per mask set and batch, drawn from a generator seeded by the iteration
  (``_sample_block_size``: ``h = round(sqrt(keep * ar))``, ``w = round(sqrt(keep / ar))``, ``keep =
  int(H * W * scale)``, both capped at the grid); positions are drawn per sample and per block;
* a sample whose context came out empty is drawn again (the reference's ``while empty_context`` loop);
* tokens past ``max_temporal_keep`` of the clip are never context (``max_context_duration``);
* to stack a batch the context and target index lists are cut to the smallest count in the batch, keeping the
  lowest indices (the reference's ``cm[:min_keep]``); the method takes that minimum over all processes.

Tokens are ordered ``(t, h, w)``, the order of the ViT's Conv3d patch embedding (``backbones/video_vit.py``).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch


@dataclass(frozen=True)
class MultiBlockMaskSpec:
    """One mask set (an entry of the reference config's ``mask:`` list)."""

    num_blocks: int  # num_blocks: blocks per sample, their union is predicted
    spatial_scale: tuple[float, float]  # spatial_scale: fraction of the H x W grid one block covers (min, max)
    aspect_ratio: tuple[float, float] = (0.75, 1.5)  # aspect_ratio: block height / width (min, max)
    temporal_scale: tuple[float, float] = (1.0, 1.0)  # temporal_scale: fraction of the time steps (1: tubes)
    max_temporal_keep: float = 1.0  # max_temporal_keep: context only within this fraction of the time steps

    def __post_init__(self):
        if self.num_blocks < 1:
            raise ValueError(f"num_blocks must be >= 1, got {self.num_blocks}")
        for name in ("spatial_scale", "temporal_scale"):
            low, high = getattr(self, name)
            if not 0.0 < low <= high <= 1.0:
                raise ValueError(f"{name} must be (min, max) with 0 < min <= max <= 1, got {getattr(self, name)}")
        low, high = self.aspect_ratio
        if not 0.0 < low <= high:
            raise ValueError(f"aspect_ratio must be (min, max) with 0 < min <= max, got {self.aspect_ratio}")
        if not 0.0 < self.max_temporal_keep <= 1.0:
            raise ValueError(f"max_temporal_keep must be in (0, 1], got {self.max_temporal_keep}")


def _uniform(low: float, high: float, generator: torch.Generator) -> float:
    return low + torch.rand(1, generator=generator).item() * (high - low)


def sample_block_shape(grid: tuple[int, int, int], spec: MultiBlockMaskSpec,
                       generator: torch.Generator) -> tuple[int, int, int]:
    """The ``(t, h, w)`` size in tokens of every block of one mask set for one batch (``_sample_block_size``)."""
    duration, height, width = grid
    t = max(1, int(duration * _uniform(*spec.temporal_scale, generator)))
    keep = int(height * width * _uniform(*spec.spatial_scale, generator))
    ratio = _uniform(*spec.aspect_ratio, generator)
    h = min(int(round(math.sqrt(keep * ratio))), height)
    w = min(int(round(math.sqrt(keep / ratio))), width)
    return t, max(h, 1), max(w, 1)


def _draw_blocks(batch: int, grid: tuple[int, int, int], shape: tuple[int, int, int], num_blocks: int,
                 generator: torch.Generator | None) -> torch.Tensor:
    """Bool ``(batch, T, H, W)``: the union of ``num_blocks`` blocks of ``shape`` at uniform positions."""
    size = (batch, num_blocks, 1, 1, 1)
    corners = [torch.randint(0, n - s + 1, size, generator=generator) for n, s in zip(grid, shape)]
    axes = [torch.arange(n) for n in grid]
    inside = [(a.view(*view) >= c) & (a.view(*view) < c + s)
              for a, c, s, view in zip(axes, corners, shape, ((-1, 1, 1), (1, -1, 1), (1, 1, -1)))]
    return (inside[0] & inside[1] & inside[2]).any(dim=1)


def multiblock_mask(batch: int, grid: tuple[int, int, int], spec: MultiBlockMaskSpec,
                    shape: tuple[int, int, int], generator: torch.Generator | None = None,
                    max_tries: int = 100) -> torch.Tensor:
    """Bool ``(batch, T, H, W)`` over the token grid, True = predicted (target), False = context.

    ``shape``: the blocks' ``(t, h, w)`` (``sample_block_shape``). ``generator``: for the positions (None: torch's
    global RNG, which the trainer checkpoints). A sample left without context is redrawn; after ``max_tries``
    draws a ``ValueError`` says the blocks are too large for the grid.
    """
    target = _draw_blocks(batch, grid, shape, spec.num_blocks, generator)
    context_steps = max(1, int(grid[0] * spec.max_temporal_keep))
    if context_steps < grid[0]:
        target[:, context_steps:] = True
    for _ in range(max_tries):
        empty = target.flatten(1).all(dim=1)
        if not empty.any():
            return target
        redrawn = _draw_blocks(int(empty.sum()), grid, shape, spec.num_blocks, generator)
        redrawn[:, context_steps:] = True
        target[empty] = redrawn
    raise ValueError(f"multiblock_mask: {spec.num_blocks} blocks of {shape} tokens leave no context on the "
                     f"{grid} token grid in {max_tries} draws; use a larger clip or smaller blocks")


def mask_counts(target: torch.Tensor) -> tuple[int, int]:
    """``(fewest context tokens, fewest target tokens)`` of any sample of a bool ``(B, ...)`` target mask."""
    per_sample = target.flatten(1).sum(dim=1)
    total = target.flatten(1).shape[1]
    return int(total - per_sample.max()), int(per_sample.min())


def mask_indices(target: torch.Tensor, context_keep: int, target_keep: int) -> tuple[torch.Tensor, torch.Tensor]:
    """Bool ``(B, ...)`` target mask -> ``(context (B, context_keep), target (B, target_keep))`` long indices into
    the flattened tokens, each row ascending and cut to its first ``*_keep`` entries (the reference's
    ``cm[:min_keep]``; ``mask_counts`` gives the largest cuts every sample can fill)."""
    flat = target.flatten(1).to(torch.int8)
    counts = flat.sum(dim=1)
    total = flat.shape[1]
    if context_keep > int(total - counts.max()) or target_keep > int(counts.min()):
        raise ValueError(f"mask_indices: cannot keep {context_keep} context / {target_keep} target tokens of a mask "
                         f"with at least {int(total - counts.max())} / {int(counts.min())}")
    context = torch.argsort(flat, dim=1, stable=True)[:, :context_keep]  # False (0) first, in token order
    targets = torch.argsort(1 - flat, dim=1, stable=True)[:, :target_keep]
    return context, targets


def fit_clip_to_tubelet(clip: torch.Tensor, tubelet: int) -> torch.Tensor:
    """``(B, C, T, H, W)``: an image (``T=1``) is repeated to the tubelet length, so one ViT serves images and video
    (as ``methods/mae.py`` does); any other ``T`` must divide by the tubelet (``ValueError``)."""
    t = clip.shape[2]
    if t == 1 and tubelet > 1:
        return clip.expand(-1, -1, tubelet, -1, -1)
    if t % tubelet:
        raise ValueError(f"T={t} must be 1 or a multiple of the tubelet size {tubelet}")
    return clip
