"""Video augmentation on ``torchvision.transforms.v2``: one random draw per clip, applied to all its frames.

Every transform here takes one view's decoded uint8 frames ``(T, H, W, C)`` (tensor or array) and returns
a float clip ``(C, T, H, W)`` (the ``ViewSpec.transforms`` contract). Inside, frames are wrapped as a
``tv_tensors.Video`` of shape ``(T, C, H, W)``, so v2 draws the crop, flip, jitter... ONCE and applies it to
every frame: the augmentation changes the look of a clip, never its motion. Images are the T=1 case.

v2 draws from torch's global RNG; ``VideoDataset`` seeds it per sample, so augmentations are reproducible.
``BatchedVideoAugment`` runs the same recipe on a whole ``(B, C, T, H, W)`` batch on any device (the GPU),
with an independent draw per sample, for when the CPU workers are the bottleneck.
"""
from __future__ import annotations

from typing import Any, Callable, Sequence

import numpy as np
import torch
from torch import nn
from torchvision import tv_tensors
from torchvision.transforms import v2
from torchvision.transforms.v2 import functional as F

# Kinetics RGB statistics used by pytorchvideo / SlowFast (also the eval transforms' default).
VIDEO_MEAN = (0.45, 0.45, 0.45)
VIDEO_STD = (0.225, 0.225, 0.225)
IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def to_video(frames: torch.Tensor | np.ndarray) -> tv_tensors.Video:
    """uint8 ``(T, H, W, C)`` frames -> ``tv_tensors.Video`` ``(T, C, H, W)`` (no copy when possible)."""
    frames = torch.as_tensor(frames)
    if frames.ndim != 4:
        raise ValueError(f"video transform expects frames of shape (T, H, W, C), got {tuple(frames.shape)}")
    return tv_tensors.Video(frames.permute(0, 3, 1, 2))


def to_clip(video: torch.Tensor) -> torch.Tensor:
    """``(T, C, H, W)`` video -> plain contiguous ``(C, T, H, W)`` tensor."""
    return video.as_subclass(torch.Tensor).permute(1, 0, 2, 3).contiguous()


class VideoTransform:
    """A v2 pipeline as a ``ViewSpec`` transform: uint8 ``(T, H, W, C)`` -> float ``(C, T, H, W)``."""

    def __init__(self, steps: Sequence[Callable]):
        self.pipeline = v2.Compose(list(steps) or [v2.Identity()])

    def __call__(self, frames: torch.Tensor | np.ndarray) -> torch.Tensor:
        return to_clip(self.pipeline(to_video(frames)))

    def __repr__(self) -> str:
        return f"VideoTransform({self.pipeline})"


def luma(clip: torch.Tensor) -> torch.Tensor:
    """``(B, 3, T, H, W)`` -> ``(B, 1, T, H, W)``: ITU-R BT.601 luma (0.299 R + 0.587 G + 0.114 B), in the clip's units."""
    weights = clip.new_tensor((0.299, 0.587, 0.114)).view(1, 3, 1, 1, 1)
    return (clip * weights).sum(dim=1, keepdim=True)



def frame_differences(clip: torch.Tensor, keep_length: bool = False) -> torch.Tensor:
    """Differences of consecutive frames ``x[t+1] - x[t]`` of ``(B, C, T, H, W)`` clips: a cheap motion input (what
    is static cancels, what moves remains), the stand-in for optical flow in BraVe's and ELo's flow streams and the
    residual frames of Tao, Wang & Yamasaki ("Rethinking Motion Representation: Residual Frames with 3D ConvNets",
    2020, https://arxiv.org/abs/2001.05661).

    ``keep_length=False`` -> ``(B, C, T-1, H, W)``, only the true differences; a one-frame clip (T=1) is returned
    unchanged. BraVe's frame-difference broad view uses this: the broad view has its own backbone, which takes any
    frame count, and at T=1 (images) the broad view stays the frame rather than becoming constant.

    ``keep_length=True`` -> ``(B, C, T, H, W)``, the last difference repeated; at T=1 all zeros (no motion). The
    residual-input backbone (``backbone.kwargs.input_transform=residual``) and ELo's streams use this: a wrapped
    backbone must see the clip geometry that ``encoder.pt`` records (a ViT's tubelets and position tables, MAE's
    reconstruction target on the same token grid), and ELo's reconstruction target keeps the clip's length.
    """
    if keep_length:
        if clip.shape[2] < 2:
            return torch.zeros_like(clip)
        diff = clip[:, :, 1:] - clip[:, :, :-1]
        return torch.cat([diff, diff[:, :, -1:]], dim=2)
    return clip[:, :, 1:] - clip[:, :, :-1] if clip.shape[2] > 1 else clip

def blur_kernel_size(side: int) -> int:
    """Odd kernel of ~10% of the image side (SimCLR, Chen et al. 2020, appendix A), at least 3."""
    return max(3, int(0.1 * side) // 2 * 2 + 1)


class RandomGaussianBlur(nn.Module):
    """Gaussian blur with probability ``p``, sigma uniform in ``sigma``, kernel ~10% of the input's
    shorter side (so one recipe fits any crop size). One draw per call: every frame of a clip alike."""

    def __init__(self, p: float = 0.5, sigma: tuple[float, float] = (0.1, 2.0)):
        super().__init__()
        self.p, self.sigma = p, sigma

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return video
        sigma = float(torch.empty(()).uniform_(*self.sigma))
        kernel = blur_kernel_size(min(video.shape[-2:]))
        return F.gaussian_blur(video, [kernel, kernel], [sigma, sigma])


class RandomGrayscale(nn.Module):
    """Grayscale (kept as 3 equal channels) with probability ``p``, one draw per clip.

    Not ``v2.RandomGrayscale``: torchvision 0.26 registers no grayscale kernel for ``tv_tensors.Video``,
    so v2 passes videos through unchanged. We call the tensor kernel on ``(T, C, H, W)`` ourselves.
    """

    def __init__(self, p: float = 0.2):
        super().__init__()
        self.p = p

    def forward(self, video: torch.Tensor) -> torch.Tensor:
        if torch.rand(()) >= self.p:
            return video
        gray = F.rgb_to_grayscale(video.as_subclass(torch.Tensor), num_output_channels=video.shape[-3])
        return tv_tensors.wrap(gray, like=video) if isinstance(video, tv_tensors.Video) else gray


def colour_steps(strength: float = 0.5, jitter_p: float = 0.8, gray_p: float = 0.2,
                 blur_p: float = 0.5, solarize_p: float = 0.0,
                 jitter: Sequence[float] | None = None) -> list[Callable]:
    """Colour and blur augmentations on a float video in [0, 1].

    SimCLR (Chen et al. 2020): colour jitter with probability 0.8, brightness/contrast/saturation
    ``0.8 * strength`` and hue ``0.2 * strength`` (strength 0.5 gives MoCo v2's (0.4, 0.4, 0.4, 0.1));
    grayscale with p=0.2; Gaussian blur sigma in [0.1, 2.0] with p=0.5. ``jitter`` = (brightness, contrast,
    saturation, hue) sets the four strengths directly instead (the video study's SlowFast configs,
    facebookresearch/SlowFast configs/contrastive_ssl/*.yaml SSL_COLOR_BRI_CON_SAT / SSL_COLOR_HUE:
    (0.6, 0.6, 0.6, 0.15), i.e. strength 0.75). BYOL (Grill et al. 2020) makes the two views asymmetric:
    blur p=1.0/0.1, solarize p=0.0/0.2.
    """
    s = strength
    steps: list[Callable] = []
    if jitter is not None:
        if len(jitter) != 4:
            raise ValueError(f"jitter must be (brightness, contrast, saturation, hue), got {list(jitter)}")
        if jitter_p > 0 and any(float(j) > 0 for j in jitter):
            b, c, sat, hue = (float(j) for j in jitter)
            steps.append(v2.RandomApply([v2.ColorJitter(b, c, sat, hue)], p=jitter_p))
    elif jitter_p > 0 and s > 0:
        steps.append(v2.RandomApply([v2.ColorJitter(0.8 * s, 0.8 * s, 0.8 * s, min(0.2 * s, 0.5))], p=jitter_p))
    if gray_p > 0:
        steps.append(RandomGrayscale(p=gray_p))
    if blur_p > 0:
        steps.append(RandomGaussianBlur(p=blur_p, sigma=(0.1, 2.0)))
    if solarize_p > 0:
        steps.append(v2.RandomSolarize(threshold=0.5, p=solarize_p))  # on [0, 1] floats
    return steps


def build_video_transform(kind: str = "ssl", crop_size: int = 224, scale: tuple[float, float] = (0.2, 1.0),
                          strength: float = 0.5, mean: Sequence[float] = VIDEO_MEAN,
                          std: Sequence[float] = VIDEO_STD, jitter_p: float = 0.8, gray_p: float = 0.2,
                          blur_p: float = 0.5, solarize_p: float = 0.0, flip: bool = True,
                          resize_size: int | None = None, normalize: bool = True,
                          jitter: Sequence[float] | None = None,
                          short_side_range: Sequence[int] | None = None) -> VideoTransform:
    """The per-view transform for a ``ViewSpec``: uint8 ``(T, H, W, C)`` -> float ``(C, T, crop, crop)``.

    kind:
      - ``"ssl"``: random resized crop (``scale`` of the frame area, default MoCo v2's 0.2-1.0; the video study's
        SlowFast configs use TRAIN_JITTER_SCALES_RELATIVE [0.2, 0.766]; aspect 3/4-4/3 as theirs), horizontal
        flip, then ``colour_steps`` (``strength`` or explicit ``jitter``, see there), normalisation.
      - ``"finetune"``: random resized crop + flip + normalisation (no colour change).
      - ``"eval"``: resize the short side to ``resize_size`` (default ``crop_size``), centre crop, normalise.
      - ``"crop"``: random resized crop + flip to float in [0, 1] only; colour runs later on the GPU
        through ``BatchedVideoAugment(crop_size=None)``.
    short_side_range ``(min, max)``: instead of the random resized crop, resize the short side to an integer
    uniform in [min, max] and take a random ``crop_size`` square (SlowFast's random_short_side_scale_jitter +
    random_crop, TRAIN_JITTER_SCALES, e.g. [256, 320]).
    """
    if short_side_range is not None:
        low, high = (int(s) for s in short_side_range)
        if not 0 < low <= high:
            raise ValueError(f"short_side_range must be (min, max) with 0 < min <= max, got {list(short_side_range)}")
        crop = [v2.RandomShortestSize(list(range(low, high + 1)), antialias=True), v2.RandomCrop(crop_size)]
    else:
        crop = [v2.RandomResizedCrop(crop_size, scale=scale, antialias=True)]
    crop += [v2.RandomHorizontalFlip()] if flip else []
    to_float = [v2.ToDtype(torch.float32, scale=True)]
    norm = [v2.Normalize(list(mean), list(std))] if normalize else []
    if kind == "ssl":
        colour = colour_steps(strength, jitter_p, gray_p, blur_p, solarize_p, jitter)
        return VideoTransform(crop + to_float + colour + norm)
    if kind == "finetune":
        return VideoTransform(crop + to_float + norm)
    if kind == "eval":
        resize = [v2.Resize(resize_size or crop_size, antialias=True), v2.CenterCrop(crop_size)]
        return VideoTransform(resize + to_float + norm)
    if kind == "crop":
        return VideoTransform(crop + to_float)
    raise ValueError(f"unknown video transform kind {kind!r} (expected ssl, finetune, eval or crop)")


class SpatialCrop:
    """Resize the short side to ``crop_size`` and take the square crop at ``position`` along the long side:
    ``"first"`` (left / top), ``"center"``, ``"last"`` (right / bottom). The 3-crop test of SlowFast
    (Feichtenhofer et al. 2019). Works on ``(..., H, W)`` tensors and tv_tensors."""

    def __init__(self, crop_size: int, position: str = "center"):
        if position not in ("first", "center", "last"):
            raise ValueError(f"crop position must be first, center or last, got {position!r}")
        self.crop_size, self.position = crop_size, position

    def __call__(self, video: torch.Tensor) -> torch.Tensor:
        video = F.resize(video, [self.crop_size], antialias=True)
        height, width = video.shape[-2:]
        room_h, room_w = height - self.crop_size, width - self.crop_size
        pick = {"first": 0.0, "center": 0.5, "last": 1.0}[self.position]
        top = int(room_h * pick) if height > width else room_h // 2
        left = int(room_w * pick) if width >= height else room_w // 2
        return F.crop(video, top, left, self.crop_size, self.crop_size)


def build_test_transforms(crop_size: int, num_crops: int = 3, mean: Sequence[float] = VIDEO_MEAN,
                          std: Sequence[float] = VIDEO_STD) -> dict[str, VideoTransform]:
    """``{"crop0": left/top, "crop1": centre, "crop2": right/bottom}`` (``{"crop0": centre}`` for 1 crop),
    matching the view transforms of ``MultiClipTestSampler(num_crops=...)``."""
    positions = {1: ("center",), 3: ("first", "center", "last")}.get(num_crops)
    if positions is None:
        raise ValueError(f"num_crops must be 1 or 3, got {num_crops}")
    tail = [v2.ToDtype(torch.float32, scale=True), v2.Normalize(list(mean), list(std))]
    return {f"crop{j}": VideoTransform([SpatialCrop(crop_size, p)] + tail) for j, p in enumerate(positions)}


def three_crop(clip: torch.Tensor, crop_size: int) -> list[torch.Tensor]:
    """Left/top, centre, right/bottom square crops of a ``(C, T, H, W)`` clip -> 3 x ``(C, T, crop, crop)``."""
    return [SpatialCrop(crop_size, p)(clip) for p in ("first", "center", "last")]


def build_multicrop_transforms(global_size: int = 224, local_size: int = 96,
                               global_scale: tuple[float, float] = (0.4, 1.0),
                               local_scale: tuple[float, float] = (0.05, 0.4), **kw: Any) -> dict[str, VideoTransform]:
    """Multi-crop (Caron et al. 2020 SwAV / 2021 DINO: 2 x 224 px over 40-100% of the frame, small
    96 px crops over 5-40%): ``{"global": ..., "local": ...}`` for ``SVTSampler`` and T=1 multi-crop.
    ``kw`` go to ``build_video_transform`` (strength, blur_p, ...)."""
    return {"global": build_video_transform("ssl", global_size, scale=global_scale, **kw),
            "local": build_video_transform("ssl", local_size, scale=local_scale, **kw)}


def tube_mask(num_t: int, num_h: int, num_w: int, mask_ratio: float = 0.9,
              generator: torch.Generator | None = None) -> torch.Tensor:
    """Tube masking for video MAE (Tong et al. 2022, VideoMAE: ratio 0.9): bool ``(num_t, num_h, num_w)``
    over the patch grid, True = masked. Exactly ``round(mask_ratio * num_h * num_w)`` spatial positions
    are masked, the same ones at every time step (a tube), so a patch cannot be copied from a neighbour
    frame."""
    if not 0.0 <= mask_ratio < 1.0:
        raise ValueError(f"mask_ratio must be in [0, 1), got {mask_ratio}")
    num_masked = int(round(mask_ratio * num_h * num_w))
    order = torch.randperm(num_h * num_w, generator=generator)
    spatial = torch.zeros(num_h * num_w, dtype=torch.bool)
    spatial[order[:num_masked]] = True
    return spatial.view(1, num_h, num_w).expand(num_t, num_h, num_w).clone()


class BatchedVideoAugment(nn.Module):
    """The SSL recipe on a float batch ``(B, C, T, H, W)`` in [0, 1], on whatever device it lives on.

    Each sample gets its own random draw (loop over the batch; each clip's frames share it). With
    ``crop_size`` set it also random-resized-crops (and flips) to that size; with ``crop_size=None`` the
    batch is expected already cropped (``build_video_transform("crop")`` in the workers) and only
    colour, blur, solarize and normalisation run here. Output: ``(B, C, T, crop, crop)``.
    """

    def __init__(self, crop_size: int | None = None, scale: tuple[float, float] = (0.2, 1.0), strength: float = 0.5,
                 jitter_p: float = 0.8, gray_p: float = 0.2, blur_p: float = 0.5, solarize_p: float = 0.0,
                 flip: bool = True, mean: Sequence[float] = VIDEO_MEAN, std: Sequence[float] = VIDEO_STD,
                 jitter: Sequence[float] | None = None):
        super().__init__()
        steps: list[Callable] = []
        if crop_size is not None:
            steps.append(v2.RandomResizedCrop(crop_size, scale=scale, antialias=True))
            if flip:
                steps.append(v2.RandomHorizontalFlip())
        steps += colour_steps(strength, jitter_p, gray_p, blur_p, solarize_p, jitter)
        self.per_sample = v2.Compose(steps or [v2.Identity()])
        self.normalize = v2.Normalize(list(mean), list(std))

    @torch.no_grad()
    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        if batch.ndim != 5:
            raise ValueError(f"BatchedVideoAugment expects (B, C, T, H, W), got {tuple(batch.shape)}")
        out = [self.per_sample(tv_tensors.Video(clip.transpose(0, 1))) for clip in batch]  # (T, C, H, W) each
        video = torch.stack([o.as_subclass(torch.Tensor) for o in out])  # (B, T, C, h, w)
        return self.normalize(video).transpose(1, 2).contiguous()
