"""View declarations shared by several methods (the joint-embedding family's rho clips) and the augmentation
options those methods' configs share."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from omegaconf import DictConfig

from ..data.sampling import RhoClipSampler, ViewSpec
from ..errors import UserError
from ..transforms.video import BatchedVideoAugment, build_video_transform
from .base import MethodConfig


@dataclass
class RhoViewsConfig(MethodConfig):
    """Augmentation of the rho clips, settable from a recipe (``method.crop_scale`` ...).

    The defaults are the transforms' own (MoCo v2's image recipe, Chen et al. 2020): crop scale 0.2-1.0, colour
    jitter (0.4, 0.4, 0.4, 0.1) with p=0.8, grayscale p=0.2, blur p=0.5. The video study's SlowFast configs
    (facebookresearch/SlowFast configs/contrastive_ssl/{MoCo,BYOL,SimCLR,SwAV}_*8x8.yaml) use
    TRAIN_JITTER_SCALES_RELATIVE [0.2, 0.766], SSL_COLOR_BRI_CON_SAT [0.6, 0.6, 0.6], SSL_COLOR_HUE 0.15,
    COLOR_RND_GRAYSCALE 0.2 (and SSL_MOCOV2_AUG: jitter p=0.8, blur sigma 0.1-2 with p=0.5, the defaults here).
    """

    crop_scale: list[float] = field(default_factory=lambda: [0.2, 1.0])  # random-resized-crop area fraction
    color_jitter: list[float] = field(default_factory=list)  # [brightness, contrast, saturation, hue]; []: 0.4/0.1
    gray_p: float = 0.2  # grayscale probability


def rho_augment(h: Any) -> dict[str, Any]:
    """The ``build_video_transform`` keywords of a ``RhoViewsConfig`` section (or a mapping with its three keys)."""
    scale = tuple(float(s) for s in h["crop_scale"])
    if len(scale) != 2 or not 0.0 < scale[0] <= scale[1] <= 1.0:
        raise UserError(f"method.crop_scale must be [min, max] with 0 < min <= max <= 1, got {list(scale)}")
    jitter = [float(j) for j in h["color_jitter"]]
    if jitter and len(jitter) != 4:
        raise UserError(f"method.color_jitter must be [brightness, contrast, saturation, hue] or [], got {jitter}")
    return {"scale": scale, "jitter": tuple(jitter) if jitter else None, "gray_p": float(h["gray_p"])}


def rho_clip_views(data_cfg: DictConfig, num_clips: int = 2, asymmetric: bool = False,
                   augment: dict[str, Any] | None = None) -> ViewSpec:
    """``num_clips`` clips of ``data.num_frames`` frames at random times, each with its own SSL augmentation.

    asymmetric: BYOL's two augmentation pipelines (Grill et al. 2020, tab. 6: blur p=1.0 / 0.1, solarize
    p=0.0 / 0.2), assigned to alternating clips. augment: ``scale`` / ``jitter`` / ``gray_p`` for every clip
    (``rho_augment``; None keeps the transforms' defaults). At ``num_frames=1`` the clips are single frames.
    """
    size = data_cfg.crop_size
    augment = dict(augment or {})
    scale = augment.pop("scale", (0.2, 1.0))
    strengths = ({"view0": {"blur_p": 1.0, "solarize_p": 0.0}, "view1": {"blur_p": 0.1, "solarize_p": 0.2}}
                 if asymmetric else {"clip": {}})
    sampler = RhoClipSampler(rho=num_clips, num_frames=data_cfg.num_frames, stride=data_cfg.frame_stride,
                             transforms=tuple(strengths))
    if data_cfg.gpu_augment:  # crop and flip in the workers, the rest batched on the device
        transforms = {name: build_video_transform("crop", size, scale=scale) for name in strengths}
        names = [tuple(strengths)[k % len(strengths)] for k in range(num_clips)]
        device = tuple(BatchedVideoAugment(None, **augment, **strengths[name]) for name in names)
        return ViewSpec(sampler=sampler, transforms=transforms, device_transforms=device)
    transforms = {name: build_video_transform("ssl", size, scale=scale, **augment, **kw)
                  for name, kw in strengths.items()}
    return ViewSpec(sampler=sampler, transforms=transforms)
