"""View declarations shared by several methods (the joint-embedding family's rho clips)."""
from __future__ import annotations

from omegaconf import DictConfig

from ..data.sampling import RhoClipSampler, ViewSpec


def rho_clip_views(data_cfg: DictConfig, num_clips: int = 2, asymmetric: bool = False) -> ViewSpec:
    """``num_clips`` clips of ``data.num_frames`` frames at random times, each with its own SSL augmentation.

    asymmetric: BYOL's two augmentation pipelines (Grill et al. 2020, tab. 6: blur p=1.0 / 0.1, solarize
    p=0.0 / 0.2), assigned to alternating clips. At ``num_frames=1`` the clips are single frames (images).
    """
    from ..transforms.video import BatchedVideoAugment, build_video_transform

    size = data_cfg.crop_size
    strengths = ({"view0": {"blur_p": 1.0, "solarize_p": 0.0}, "view1": {"blur_p": 0.1, "solarize_p": 0.2}}
                 if asymmetric else {"clip": {}})
    sampler = RhoClipSampler(rho=num_clips, num_frames=data_cfg.num_frames, stride=data_cfg.frame_stride,
                             transforms=tuple(strengths))
    if data_cfg.gpu_augment:  # crop and flip in the workers, the rest batched on the device
        transforms = {name: build_video_transform("crop", size) for name in strengths}
        names = [tuple(strengths)[k % len(strengths)] for k in range(num_clips)]
        device = tuple(BatchedVideoAugment(None, **strengths[name]) for name in names)
        return ViewSpec(sampler=sampler, transforms=transforms, device_transforms=device)
    transforms = {name: build_video_transform("ssl", size, **kw) for name, kw in strengths.items()}
    return ViewSpec(sampler=sampler, transforms=transforms)
