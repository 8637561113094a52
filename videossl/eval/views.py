"""The views the evaluation protocols ask the data pipeline for (``ViewSpec``s), built from the project's
samplers (``videossl.data.sampling``) and transforms (``videossl.transforms.video``).

- ``multi_view_spec``: N clips uniformly spaced over the video x 1 or 3 spatial crops, no augmentation:
  the test views of every protocol (SlowFast, Feichtenhofer et al. ICCV 2019: 10 clips x 3 crops) and,
  with fewer clips and the center crop only, the training features of the linear probe / kNN / retrieval.
  Each (clip, crop) pair is one view; the crops of a clip share its frame indices, so the dataset still
  decodes the union of the frames once per video. Short videos repeat their last frame (the samplers'
  convention).
- ``finetune_spec``: one clip at a random time, random resized crop + horizontal flip.
"""
from __future__ import annotations

from typing import Sequence

from videossl.data.sampling import MultiClipTestSampler, RandomClipSampler, ViewSpec
from videossl.transforms.video import VIDEO_MEAN, VIDEO_STD


def multi_view_spec(num_clips: int, num_crops: int, num_frames: int, stride: int, crop_size: int, *,
                    mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> ViewSpec:
    """Deterministic multi-view ``ViewSpec``: ``num_clips * num_crops`` views ``(C, T, crop, crop)`` per video,
    ordered clip-major (``clip0_crop0, clip0_crop1, ...``); frames resized to ``crop_size`` on the short
    side, then the left/center/right (or top/center/bottom) square crop, normalised."""
    from videossl.transforms.video import build_test_transforms

    sampler = MultiClipTestSampler(num_clips, num_frames, stride, num_crops, transform="crop0")
    return ViewSpec(sampler, build_test_transforms(crop_size, num_crops, mean=tuple(mean or VIDEO_MEAN),
                                                   std=tuple(std or VIDEO_STD)))


def finetune_spec(num_frames: int, stride: int, crop_size: int, strength: float, *,
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> ViewSpec:
    """One random clip, random resized crop with scale ``(1 - 0.92 * strength, 1)`` (strength 1 gives the
    (0.08, 1) of Inception-style training, Szegedy et al. 2015) and a horizontal flip, normalised."""
    from videossl.transforms.video import build_video_transform

    scale = (1.0 - 0.92 * strength, 1.0)
    transform = build_video_transform("finetune", crop_size=crop_size, scale=scale, mean=tuple(mean or VIDEO_MEAN),
                                      std=tuple(std or VIDEO_STD))
    return ViewSpec(RandomClipSampler(num_frames, stride, transform="clip"), {"clip": transform})
