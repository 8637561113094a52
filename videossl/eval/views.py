"""The views the evaluation protocols ask the data pipeline for (``ViewSpec``s).

- ``multi_view_spec``: N clips uniformly spaced over the video x 1 or 3 spatial crops, no augmentation:
  the test views of every protocol (SlowFast, Feichtenhofer et al. ICCV 2019: 10 clips x 3 crops) and,
  with fewer clips and the center crop only, the training features of the linear probe / kNN / retrieval.
  Each (clip, crop) pair is one ``ViewRequest``; the three crops of a clip share its frame indices, so the
  dataset still decodes the union of the frames once per video.
- ``finetune_spec``: one clip at a random time, random resized crop + horizontal flip.

The samplers are ``videossl.data.sampling``'s (``MultiClipTestSampler``, ``RandomClipSampler``; short
videos repeat their last frame); the transforms here take one view's uint8 ``(T, H, W, C)`` frames.
"""
from __future__ import annotations

from typing import Callable

import torch

from videossl.data.sampling import MultiClipTestSampler, RandomClipSampler, ViewSpec

# Kinetics RGB statistics used by pytorchvideo / SlowFast (the pretraining transforms use the same).
VIDEO_MEAN = (0.45, 0.45, 0.45)
VIDEO_STD = (0.225, 0.225, 0.225)
CROP_NAMES = {1: ("center",), 3: ("first", "center", "last")}


class SpatialCropTransform:
    """uint8 ``(T, H, W, C)`` -> normalised float ``(C, T, crop, crop)``: resize the short side to
    ``crop_size``, then take the square crop at ``position`` along the long side ("first" = left/top,
    "center", "last" = right/bottom), as in the 3-crop test of SlowFast."""

    def __init__(self, crop_size: int, position: str = "center", mean=VIDEO_MEAN, std=VIDEO_STD):
        if position not in ("first", "center", "last"):
            raise ValueError(f"crop position must be first, center or last, got '{position}'")
        self.crop_size, self.position, self.mean, self.std = crop_size, position, list(mean), list(std)

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        from torchvision.transforms.v2 import functional as F

        video = frames.permute(0, 3, 1, 2)  # (T, C, H, W) for torchvision
        video = F.resize(video, [self.crop_size], antialias=True)  # short side -> crop_size
        height, width = video.shape[-2:]
        top = _offset(height - self.crop_size, self.position if height > width else "center")
        left = _offset(width - self.crop_size, self.position if width >= height else "center")
        video = F.crop(video, top, left, self.crop_size, self.crop_size)
        video = F.normalize(F.to_dtype(video, torch.float32, scale=True), self.mean, self.std)
        return video.permute(1, 0, 2, 3).contiguous()  # (C, T, H, W)


def _offset(room: int, position: str) -> int:
    return {"first": 0, "center": room // 2, "last": room}[position]


class RandomResizedCropFlip:
    """Fine-tuning augmentation: uint8 ``(T, H, W, C)`` -> float ``(C, T, crop, crop)``; one random draw
    per clip (``tv_tensors.Video``), so all frames share the crop and the flip."""

    def __init__(self, crop_size: int, scale: tuple[float, float] = (0.54, 1.0), mean=VIDEO_MEAN, std=VIDEO_STD):
        from torchvision import transforms as T

        self.augment = T.v2.Compose([
            T.v2.RandomResizedCrop(crop_size, scale=scale, antialias=True),
            T.v2.RandomHorizontalFlip(),
            T.v2.ToDtype(torch.float32, scale=True),
            T.v2.Normalize(list(mean), list(std)),
        ])

    def __call__(self, frames: torch.Tensor) -> torch.Tensor:
        from torchvision import tv_tensors

        video = tv_tensors.Video(frames.permute(0, 3, 1, 2))
        return self.augment(video).as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()


def multi_view_spec(num_clips: int, num_crops: int, num_frames: int, stride: int, crop_size: int) -> ViewSpec:
    """Deterministic multi-view ``ViewSpec``: ``num_clips * num_crops`` views per video, no augmentation."""
    transforms: dict[str, Callable] = {
        f"crop{j}": SpatialCropTransform(crop_size, position) for j, position in enumerate(CROP_NAMES[num_crops])
    }
    sampler = MultiClipTestSampler(num_clips, num_frames, stride, num_crops, transform="crop0")
    return ViewSpec(sampler, transforms)


def finetune_spec(num_frames: int, stride: int, crop_size: int, strength: float) -> ViewSpec:
    """One random clip with random resized crop (scale ``(1 - 0.92 * strength, 1)``) and flip."""
    scale = (1.0 - 0.92 * strength, 1.0)
    return ViewSpec(RandomClipSampler(num_frames, stride, transform="clip"), {"clip": RandomResizedCropFlip(crop_size, scale)})
