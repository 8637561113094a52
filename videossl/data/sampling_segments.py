"""Samplers of the Something-Something v2 and V-JEPA evaluation protocols (the conventions of ``sampling.py`` hold):

- ``PartitionClipSampler``: one clip at a random time inside each equal part of the video (V-JEPA's attentive probe);
- ``SegmentFrameSampler`` / ``SegmentTestSampler``: TSN segment sampling (Wang et al., ECCV 2016), one frame per
  equal segment, and its test views (VideoMAE's SSv2 fine-tuning).
"""
from __future__ import annotations

import numpy as np

from .sampling import (ClipSampler, SampledViews, VideoMeta, _check_positive, clip_indices, clip_span, random_clip_start,
                       segment_frames, video_view)


class PartitionClipSampler(ClipSampler):
    """``num_clips`` clips, clip ``i`` at a random time inside the ``i``-th of ``num_clips`` equal parts of the
    segment (V-JEPA's frozen evaluation, facebookresearch/jepa ``src/datasets/video_dataset.py``
    ``loadvideo_decord``: a random window of each partition; where a partition is shorter than a clip, the clips
    are evenly spaced and overlap, ``allow_clip_overlap``). Views ``clip{i}``, all with ``transform`` (each clip
    augmented on its own, as there)."""

    def __init__(self, num_clips: int = 8, num_frames: int = 16, stride: int = 4, transform: str = "clip"):
        _check_positive(num_clips=num_clips, num_frames=num_frames, stride=stride)
        self.num_clips, self.num_frames, self.stride, self.transform = num_clips, num_frames, stride, transform

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        first, stop = segment_frames(meta)
        span = clip_span(self.num_frames, self.stride)
        part = (stop - first) // self.num_clips
        views = []
        for i in range(self.num_clips):
            if part >= span:
                start = random_clip_start(first + i * part, first + (i + 1) * part, span, rng)
            else:  # evenly spaced, overlapping clips (the last one ends at the segment's end when it fits)
                room = max(stop - first - span, 0)
                start = first + int(round(room * (i / (self.num_clips - 1) if self.num_clips > 1 else 0.5)))
            views.append(video_view(f"clip{i}", clip_indices(start, self.num_frames, self.stride, first, stop),
                                    self.transform))
        return SampledViews(views, {})


def segment_offsets(first: int, stop: int, num_segments: int, where: np.ndarray) -> tuple[int, ...]:
    """TSN frame indices: the segment ``[first, stop)`` cut into ``num_segments`` equal parts, frame ``where[i]`` (a
    fraction in [0, 1)) of part ``i``. A segment shorter than ``num_segments`` frames repeats frames."""
    tick = (stop - first) / num_segments
    idx = first + tick * (np.arange(num_segments) + where)
    return tuple(int(i) for i in np.clip(np.floor(idx), first, stop - 1))


class SegmentFrameSampler(ClipSampler):
    """TSN sampling (Wang et al., ECCV 2016): one clip of ``num_segments`` frames, the segment cut into that many
    equal parts and one uniformly random frame taken from each (VideoMAE's Something-Something v2 training clips,
    MCG-NJU/VideoMAE ``ssv2.py`` ``loadvideo_decord``: ``average_duration * i + randint(average_duration)``)."""

    def __init__(self, num_segments: int = 16, transform: str = "clip"):
        _check_positive(num_segments=num_segments)
        self.num_segments, self.transform = num_segments, transform

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        first, stop = segment_frames(meta)
        indices = segment_offsets(first, stop, self.num_segments, rng.random(self.num_segments))
        return SampledViews([video_view("clip0", indices, self.transform)], {})


class SegmentTestSampler(ClipSampler):
    """TSN test views: ``num_clips`` clips of ``num_segments`` frames, clip ``c`` taking the frame at fraction
    ``c / num_clips`` of every part (VideoMAE's SSv2 test, ``ssv2.py``: 2 clips, the parts' first frames and their
    midpoints), each seen through ``num_crops`` crops. Views ``clip{c}_crop{j}`` as ``MultiClipTestSampler``."""

    def __init__(self, num_clips: int = 2, num_segments: int = 16, num_crops: int = 3, transform: str = "clip"):
        _check_positive(num_clips=num_clips, num_segments=num_segments, num_crops=num_crops)
        self.num_clips, self.num_segments, self.num_crops, self.transform = num_clips, num_segments, num_crops, transform

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        first, stop = segment_frames(meta)
        views = []
        for c in range(self.num_clips):
            indices = segment_offsets(first, stop, self.num_segments, np.full(self.num_segments, c / self.num_clips))
            for j in range(self.num_crops):
                key = self.transform if self.num_crops == 1 else f"crop{j}"
                views.append(video_view(f"clip{c}_crop{j}", indices, key))
        return SampledViews(views, {})

