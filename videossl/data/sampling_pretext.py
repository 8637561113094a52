"""Samplers and frame-level transforms for the classic pretext tasks that ``sampling.py`` does not cover.

Samplers only see metadata, so tasks that must pick clips by their content (high-motion windows for Shuffle
and Learn, no static or camera-only clips for the arrow of time) draw a few CANDIDATES per sample; each
candidate is one view (so all its frames share one random crop and frame differences measure real motion),
and the method keeps the best candidate from frame differences (``methods/pretext_utils.py``). The union of
the candidates' frames is still decoded once.

``CropBlackBorders`` removes letterbox / pillarbox borders before the usual augmentation: Wei et al. (CVPR
2018) found networks tell the arrow of time from the black framing that some encoders add, and remove it.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

from .sampling import (ClipSampler, SampledViews, VideoMeta, _check_positive, random_clip, random_window_frames,
                       tuple_element, video_view)


class ShuffleAndLearnCandidatesSampler(ClipSampler):
    """``num_candidates`` windows of five ordered frames (a, b, c, d, e), each one view (transform ``"tuple"``).

    Misra et al. (ECCV 2016, "Shuffle and Learn") sample tuples from high-motion windows. The method scores
    each candidate's motion from frame differences and builds the tuple from the best one: the positive
    (b, c, d) for ``order_label`` 1, or a negative (b, a, d) / (b, e, d) for 0; ``negative_side`` (0: a,
    1: e) picks which. Frames are drawn from a window of ``window_frames``, as ``ShuffleAndLearnSampler``.
    With ``snippet_frames`` k > 1 each of the five is a snippet of k frames (``tuple_element``): a candidate
    view then holds 5 x k frames, element-major (the method views it as ``(B, C, 5, k, H, W)``).
    """

    def __init__(self, num_candidates: int = 4, window_frames: int = 60, positive_prob: float = 0.5,
                 snippet_frames: int = 1, snippet_stride: int = 1):
        _check_positive(num_candidates=num_candidates, window_frames=window_frames, snippet_frames=snippet_frames,
                        snippet_stride=snippet_stride)
        self.num_candidates, self.window_frames, self.positive_prob = num_candidates, window_frames, positive_prob
        self.snippet_frames, self.snippet_stride = snippet_frames, snippet_stride

    def _candidate(self, meta: VideoMeta, rng: np.random.Generator) -> tuple[int, ...]:
        frames = random_window_frames(meta, 5, self.window_frames, rng)
        return tuple(i for f in frames for i in tuple_element(f, self.snippet_frames, self.snippet_stride, meta))

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        views = [video_view(f"cand{k}", self._candidate(meta, rng), "tuple") for k in range(self.num_candidates)]
        label = int(rng.random() < self.positive_prob)
        return SampledViews(views, {"order_label": label, "negative_side": int(rng.integers(2))})


class ArrowOfTimeCandidatesSampler(ClipSampler):
    """``num_candidates`` clips of one video, all forward (``order_label`` 0) or all reversed (1).

    Wei et al. (CVPR 2018, "Learning and Using the Arrow of Time") train only on clips with real, non-camera
    motion; the method drops static and camera-only candidates (frame differences, see
    ``pretext_utils.camera_only_motion``) and keeps the one with the most motion. Views ``cand0..``, each
    ``num_frames`` frames every ``stride`` frames at its own random time, transform ``"clip"``.
    """

    def __init__(self, num_candidates: int = 2, num_frames: int = 16, stride: int = 2):
        _check_positive(num_candidates=num_candidates, num_frames=num_frames, stride=stride)
        self.num_candidates, self.num_frames, self.stride = num_candidates, num_frames, stride

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        label = int(rng.integers(2))
        views = []
        for k in range(self.num_candidates):
            indices = random_clip(meta, self.num_frames, self.stride, rng)
            views.append(video_view(f"cand{k}", indices[::-1] if label else indices, "clip"))
        return SampledViews(views, {"order_label": label})


def black_border_box(frames: torch.Tensor, threshold: int = 16, max_fraction: float = 0.25) -> tuple[int, int, int, int]:
    """``(top, bottom, left, right)`` of the content inside black borders of uint8 ``(T, H, W, C)`` frames.

    A border row / column is one whose brightest value over all frames and channels is below ``threshold``
    (a letterbox stays black for the whole clip, a dark scene does not). At most ``max_fraction`` of the
    height / width is removed from each side, so a dark clip is never cropped away.
    """
    t, h, w, _ = frames.shape
    rows = frames.amax(dim=(0, 2, 3)) >= threshold  # (H,) True = content
    cols = frames.amax(dim=(0, 1, 3)) >= threshold  # (W,)

    def inner(mask: torch.Tensor, size: int) -> tuple[int, int]:
        if not bool(mask.any()):
            return 0, size
        limit = int(size * max_fraction)
        first = min(int(mask.float().argmax()), limit)
        last = max(size - int(mask.flip(0).float().argmax()), size - limit)
        return first, last

    top, bottom = inner(rows, h)
    left, right = inner(cols, w)
    return top, bottom, left, right


class CropBlackBorders:
    """Frame transform: cut black borders from uint8 ``(T, H, W, C)`` frames, then apply ``then``.

    Wraps a ``ViewSpec`` video transform (which takes the uint8 frames and returns float ``(C, T, H, W)``).
    """

    def __init__(self, then: Callable[[Any], torch.Tensor], threshold: int = 16, max_fraction: float = 0.25):
        self.then, self.threshold, self.max_fraction = then, threshold, max_fraction

    def __call__(self, frames: Any) -> torch.Tensor:
        frames = torch.as_tensor(frames)
        top, bottom, left, right = black_border_box(frames, self.threshold, self.max_fraction)
        return self.then(frames[:, top:bottom, left:right])

    def __repr__(self) -> str:
        return f"CropBlackBorders(threshold={self.threshold}, then={self.then!r})"
