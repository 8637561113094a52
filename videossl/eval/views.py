"""The views the evaluation protocols ask the data pipeline for (``ViewSpec``s), built from the project's
samplers (``videossl.data.sampling``) and transforms (``videossl.transforms.video``).

- ``multi_view_spec``: N clips uniformly spaced over the video x 1 or 3 spatial crops, no augmentation:
  the test views of every protocol (SlowFast, Feichtenhofer et al. ICCV 2019: 10 clips x 3 crops) and,
  with fewer clips and the center crop only, the training features of the linear probe / kNN / retrieval.
  Each (clip, crop) pair is one view; the crops of a clip share its frame indices, so the dataset still
  decodes the union of the frames once per video. Short videos repeat their last frame (the samplers'
  convention).
- ``finetune_spec``: one clip at a random time (or TSN segments), random resized crop + horizontal flip (or none).
- ``segment_test_spec``: TSN test views (VideoMAE's SSv2 protocol).
- ``partition_clips_spec``: V-JEPA's attentive-probe training views, one random clip per equal part of the video.
"""
from __future__ import annotations

from typing import Sequence

from videossl.data.sampling import MultiClipTestSampler, RandomClipSampler, ViewSpec
from videossl.data.sampling_segments import PartitionClipSampler, SegmentFrameSampler, SegmentTestSampler
from videossl.transforms.video import VIDEO_MEAN, VIDEO_STD, build_test_transforms, build_video_transform


def multi_view_spec(num_clips: int, num_crops: int, num_frames: int, stride: int, crop_size: int, *,
                    mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> ViewSpec:
    """Deterministic multi-view ``ViewSpec``: ``num_clips * num_crops`` views ``(C, T, crop, crop)`` per video,
    ordered clip-major (``clip0_crop0, clip0_crop1, ...``); frames resized to ``crop_size`` on the short
    side, then the left/center/right (or top/center/bottom) square crop, normalised."""
    sampler = MultiClipTestSampler(num_clips, num_frames, stride, num_crops, transform="crop0")
    return ViewSpec(sampler, build_test_transforms(crop_size, num_crops, mean=tuple(mean or VIDEO_MEAN),
                                                   std=tuple(std or VIDEO_STD)))


def finetune_spec(num_frames: int, stride: int, crop_size: int, strength: float, *,
                  mean: Sequence[float] | None = None, std: Sequence[float] | None = None, hflip: bool = True,
                  sampling: str = "clip") -> ViewSpec:
    """One random clip, random resized crop with scale ``(1 - 0.92 * strength, 1)`` (strength 1 gives the
    (0.08, 1) of Inception-style training, Szegedy et al. 2015) and a horizontal flip (``hflip=False``: none,
    for direction-sensitive classes), normalised. ``sampling="segments"``: the clip is ``num_frames`` TSN frames,
    one random frame from each of ``num_frames`` equal parts of the video (``stride`` unused)."""
    transform = train_transform(crop_size, strength, mean=mean, std=std, hflip=hflip)
    sampler = (SegmentFrameSampler(num_frames, transform="clip") if sampling == "segments"
               else RandomClipSampler(num_frames, stride, transform="clip"))
    return ViewSpec(sampler, {"clip": transform})


def train_transform(crop_size: int, strength: float, *, mean: Sequence[float] | None = None,
                    std: Sequence[float] | None = None, hflip: bool = True):
    """Random resized crop (scale ``(1 - 0.92 * strength, 1)``), optional horizontal flip, normalisation."""
    return build_video_transform("finetune", crop_size=crop_size, scale=(1.0 - 0.92 * strength, 1.0),
                                 mean=tuple(mean or VIDEO_MEAN), std=tuple(std or VIDEO_STD), flip=hflip)


def segment_test_spec(num_clips: int, num_crops: int, num_segments: int, crop_size: int, *,
                      mean: Sequence[float] | None = None, std: Sequence[float] | None = None) -> ViewSpec:
    """TSN test views ``(C, num_segments, crop, crop)``: ``num_clips`` frame offsets inside the segments x
    ``num_crops`` crops, ordered clip-major as ``multi_view_spec``."""
    return ViewSpec(SegmentTestSampler(num_clips, num_segments, num_crops, transform="crop0"),
                    build_test_transforms(crop_size, num_crops, mean=tuple(mean or VIDEO_MEAN),
                                          std=tuple(std or VIDEO_STD)))


def partition_clips_spec(num_clips: int, num_frames: int, stride: int, crop_size: int, strength: float, *,
                         mean: Sequence[float] | None = None, std: Sequence[float] | None = None,
                         hflip: bool = False) -> ViewSpec:
    """``num_clips`` training clips, one at a random time inside each equal part of the video, each with its own
    random resized crop (and flip when ``hflip``): the attentive probe's training views."""
    transform = train_transform(crop_size, strength, mean=mean, std=std, hflip=hflip)
    return ViewSpec(PartitionClipSampler(num_clips, num_frames, stride, transform="clip"), {"clip": transform})
