"""Samplers and frame-level transforms for the order / pace pretext tasks (the views come back already permuted,
with the label as a target), built on the clip arithmetic of ``sampling.py`` and following its conventions.

Shuffle and Learn, OPN, VCOP, arrow of time and playback speed draw by metadata alone. Samplers only see
metadata, so tasks that must pick clips by their content (high-motion windows for Shuffle
and Learn, no static or camera-only clips for the arrow of time) draw a few CANDIDATES per sample; each
candidate is one view (so all its frames share one random crop and frame differences measure real motion),
and the method keeps the best candidate from frame differences (``transforms/motion.py``). The union of
the candidates' frames is still decoded once.

``CropBlackBorders`` removes letterbox / pillarbox borders before the usual augmentation: Wei et al. (CVPR
2018) found networks tell the arrow of time from the black framing that some encoders add, and remove it.
"""
from __future__ import annotations

import itertools
from typing import Any, Callable

import numpy as np
import torch

from .sampling import (ClipSampler, SampledViews, VideoMeta, _check_positive, clip_indices, clip_span, random_clip,
                       random_clip_start, segment_frames, video_view)


def random_window_frames(meta: VideoMeta, count: int, window_frames: int, rng: np.random.Generator) -> list[int]:
    """``count`` sorted frames drawn without replacement from a random window of ``window_frames``.

    Windows longer than the segment shrink to it; when the segment has fewer than ``count`` frames the
    frames are evenly spaced and repeat (the pad rule of ``sampling.py``).
    """
    first, stop = segment_frames(meta)
    width = min(window_frames, stop - first)
    start = random_clip_start(first, stop, width, rng)
    if width >= count:
        return sorted(int(start + f) for f in rng.choice(width, size=count, replace=False))
    return [int(start + f) for f in np.linspace(0, width - 1, count).round()]


def tuple_element(frame: int, snippet_frames: int, snippet_stride: int, meta: VideoMeta) -> tuple[int, ...]:
    """One element of an order tuple: the single ``frame`` (the papers' case, ``snippet_frames`` 1) or a snippet
    of ``snippet_frames`` frames every ``snippet_stride`` starting there, so a video backbone on residual frames
    sees each element's own motion (past the segment the last frame repeats, as ``clip_indices``)."""
    first, stop = segment_frames(meta)
    return clip_indices(frame, snippet_frames, snippet_stride, first, stop)


class ShuffleAndLearnSampler(ClipSampler):
    """Frame triplets in the right or wrong order (Misra et al., ECCV 2016, "Shuffle and Learn").

    Five ordered frames (a, b, c, d, e) are drawn from a random window of ``window_frames``; the
    positive is (b, c, d) (``order_label`` 1) and a negative is (b, a, d) or (b, e, d) (label 0), each
    with probability ``1 - positive_prob``. The paper picks high-motion windows; motion needs decoded
    frames, so this sampler draws windows uniformly and a method may rank windows itself. Views
    ``frame0..2`` are single frames (T=1, transform ``"frame"``).
    """

    def __init__(self, window_frames: int = 60, positive_prob: float = 0.5):
        _check_positive(window_frames=window_frames)
        self.window_frames, self.positive_prob = window_frames, positive_prob

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        a, b, c, d, e = random_window_frames(meta, 5, self.window_frames, rng)
        if rng.random() < self.positive_prob:
            triplet, label = (b, c, d), 1
        else:
            triplet, label = ((b, a, d) if rng.random() < 0.5 else (b, e, d)), 0
        views = [video_view(f"frame{k}", (f,), "frame") for k, f in enumerate(triplet)]
        return SampledViews(views, {"order_label": label})


def _order_classes(n: int) -> list[tuple[int, ...]]:
    """Permutations of ``n`` items with a permutation and its reverse in one class (OPN), sorted."""
    return sorted({min(p, p[::-1]) for p in itertools.permutations(range(n))})


class OPNSampler(ClipSampler):
    """Four frames in a shuffled order; the label is the order up to reversal (Lee et al., ICCV 2017, OPN).

    4! = 24 orders, a sequence and its reverse share a class: 12 classes. ``order_label`` in [0, 12);
    ``frame0..3`` (T=1, transform ``"frame"``) are the sorted frames taken in that order, or reversed
    with probability 1/2 (both directions of one class are shown).
    ``snippet_frames`` > 1 makes each element a short snippet starting at its frame (``tuple_element``).
    """

    num_classes = 12

    def __init__(self, window_frames: int = 30, num_frames: int = 4, snippet_frames: int = 1, snippet_stride: int = 1):
        _check_positive(window_frames=window_frames, num_frames=num_frames, snippet_frames=snippet_frames,
                        snippet_stride=snippet_stride)
        self.window_frames, self.num_frames = window_frames, num_frames
        self.snippet_frames, self.snippet_stride = snippet_frames, snippet_stride
        self.classes = _order_classes(num_frames)

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        frames = random_window_frames(meta, self.num_frames, self.window_frames, rng)
        label = int(rng.integers(len(self.classes)))
        order = self.classes[label] if rng.random() < 0.5 else self.classes[label][::-1]
        elements = [tuple_element(frames[i], self.snippet_frames, self.snippet_stride, meta) for i in order]
        views = [video_view(f"frame{k}", element, "frame") for k, element in enumerate(elements)]
        return SampledViews(views, {"order_label": label})


class VCOPSampler(ClipSampler):
    """Three consecutive clips shuffled; the label is which of the 3! = 6 orders (Xu et al., CVPR 2019, VCOP).

    VCOP: 3 clips of 16 frames with an 8-frame interval between clips. ``clip0..2`` are the clips in
    the shuffled order ``permutations[order_label]`` (lexicographic list of ``itertools.permutations``).
    """

    def __init__(self, num_clips: int = 3, clip_frames: int = 16, interval: int = 8, stride: int = 1):
        _check_positive(num_clips=num_clips, clip_frames=clip_frames, stride=stride)
        self.num_clips, self.clip_frames, self.interval, self.stride = num_clips, clip_frames, interval, stride
        self.permutations = list(itertools.permutations(range(num_clips)))

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        first, stop = segment_frames(meta)
        span = clip_span(self.clip_frames, self.stride)
        step = span + self.interval
        start = random_clip_start(first, stop, step * (self.num_clips - 1) + span, rng)
        clips = [clip_indices(start + k * step, self.clip_frames, self.stride, first, stop) for k in range(self.num_clips)]
        label = int(rng.integers(len(self.permutations)))
        views = [video_view(f"clip{k}", clips[i], "clip") for k, i in enumerate(self.permutations[label])]
        return SampledViews(views, {"order_label": label})


class ArrowOfTimeSampler(ClipSampler):
    """One clip played forward (``order_label`` 0) or reversed (1) with probability 1/2
    (Wei et al., CVPR 2018, "Learning and Using the Arrow of Time")."""

    def __init__(self, num_frames: int = 16, stride: int = 2):
        _check_positive(num_frames=num_frames, stride=stride)
        self.num_frames, self.stride = num_frames, stride

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        indices = random_clip(meta, self.num_frames, self.stride, rng)
        label = int(rng.integers(2))
        return SampledViews([video_view("clip0", indices[::-1] if label else indices, "clip")], {"order_label": label})


class PlaybackSpeedSampler(ClipSampler):
    """One clip re-paced to a random speed; ``speed_label`` indexes ``speeds``.

    Speed s takes every ``s * stride``-th frame (Benaim et al., CVPR 2020, SpeedNet; Wang et al., ECCV 2020,
    pace prediction: speeds 1, 2, 4, 8).
    """

    def __init__(self, num_frames: int = 16, stride: int = 1, speeds: tuple[int, ...] = (1, 2, 4, 8)):
        _check_positive(num_frames, stride, *speeds)
        self.num_frames, self.stride, self.speeds = num_frames, stride, tuple(speeds)

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        label = int(rng.integers(len(self.speeds)))
        indices = random_clip(meta, self.num_frames, self.stride * self.speeds[label], rng)
        return SampledViews([video_view("clip0", indices, "clip")], {"speed_label": label})



# The candidate samplers: tasks that pick clips by content.


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
    ``transforms.motion.camera_only_motion``) and keeps the one with the most motion. Views ``cand0..``, each
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
