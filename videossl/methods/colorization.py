"""Colorization (Zhang, Isola and Efros, "Colorful Image Colorization", ECCV 2016), per frame of a clip.

The network sees only lightness: the grey version of the crop (luma copied to the 3 input channels and
normalised like any RGB input, so the encoder is used on RGB clips afterwards unchanged). From the backbone's
feature map (``forward_tokens`` ``(B, D, t, h, w)``) a 1x1x1 convolution predicts, at every position of a grid
``1/output_stride`` of the crop, a distribution over quantised ab colour bins: the 10x10 ab grid cells that
sRGB colours reach (``ab_bins`` finds 261 from a 64^3 sRGB cube; Zhang et al. list 313 in-gamut bins). The
target is the soft encoding of the true ab (5 nearest bins, Gaussian sigma = 5, the paper's sec. 2.1) and the
loss is the cross-entropy with it, with the paper's class rebalancing (``rebalance``: weights
``((1 - lambda) p + lambda / Q)^-1``, lambda = 0.5, normalised to mean 1 under ``p``), where the prior ``p``
is a running average of the soft targets seen in training (the paper computes it once on ImageNet).
"""
from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.sampling import RandomClipSampler, ViewSpec
from ..errors import UserError
from ..losses.colorization import rebalance_weights, rebalanced_cross_entropy
from ..transforms.video import VIDEO_MEAN, VIDEO_STD, build_video_transform, luma
from .base import Method, MethodConfig, StepInfo

# sRGB (D65) -> XYZ matrix and the D65 white point (CIE 1931), as in skimage.color.rgb2lab.
RGB_TO_XYZ = ((0.412453, 0.357580, 0.180423), (0.212671, 0.715160, 0.072169), (0.019334, 0.119193, 0.950227))
WHITE = (0.950456, 1.0, 1.088754)


def rgb_to_lab(rgb: torch.Tensor) -> torch.Tensor:
    """sRGB in [0, 1] ``(B, 3, ...)`` -> CIE Lab ``(B, 3, ...)`` (L in [0, 100], a and b roughly [-110, 110])."""
    linear = torch.where(rgb > 0.04045, ((rgb.clamp(min=0) + 0.055) / 1.055) ** 2.4, rgb / 12.92)
    matrix = torch.tensor(RGB_TO_XYZ, dtype=rgb.dtype, device=rgb.device)
    xyz = torch.einsum("ij,bj...->bi...", matrix, linear)
    xyz = xyz / torch.tensor(WHITE, dtype=rgb.dtype, device=rgb.device).view(1, 3, *([1] * (rgb.dim() - 2)))
    f = torch.where(xyz > 0.008856, xyz.clamp(min=1e-8) ** (1 / 3), 7.787 * xyz + 16 / 116)
    fx, fy, fz = f.unbind(1)
    return torch.stack([116 * fy - 16, 500 * (fx - fy), 200 * (fy - fz)], dim=1)


@lru_cache(maxsize=4)
def ab_bins(grid: int = 10, samples_per_channel: int = 64) -> torch.Tensor:
    """Centres ``(Q, 2)`` of the ``grid``-spaced ab cells reached by sRGB colours (a dense cube of
    ``samples_per_channel**3`` colours is converted; Zhang et al. list 313 such cells for grid 10)."""
    axis = torch.linspace(0, 1, samples_per_channel, dtype=torch.float64)
    cube = torch.stack(torch.meshgrid(axis, axis, axis, indexing="ij")).reshape(1, 3, -1)
    ab = rgb_to_lab(cube)[0, 1:].t()  # (N, 2)
    return torch.unique(torch.round(ab / grid) * grid, dim=0).float()


def soft_encode(ab: torch.Tensor, bins: torch.Tensor, neighbours: int = 5, sigma: float = 5.0) -> torch.Tensor:
    """ab ``(N, 2)`` -> soft targets ``(N, Q)``: Gaussian weights on the ``neighbours`` nearest bins (sum 1)."""
    distance = torch.cdist(ab, bins)  # (N, Q)
    near, index = distance.topk(neighbours, dim=1, largest=False)
    weights = torch.softmax(-near ** 2 / (2 * sigma ** 2), dim=1)
    return torch.zeros_like(distance).scatter_(1, index, weights)


@dataclass
class ColorizationConfig(MethodConfig):
    name: str = "colorization"
    bin_size: int = 10  # Zhang et al.: ab grid size 10 (313 in-gamut bins)
    neighbours: int = 5  # soft encoding on the 5 nearest bins
    sigma: float = 5.0  # Gaussian kernel sigma = 5
    rebalance: bool = True  # class rebalancing, lambda = 0.5
    rebalance_lambda: float = 0.5
    prior_momentum: float = 0.99  # running average of the empirical bin distribution
    output_stride: int = 4  # Zhang et al. predict at 1/4 of the input resolution
    crop_scale_min: float = 0.3


class Colorization(Method):
    Config = ColorizationConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if cfg.data.crop_size % h.output_stride:
            raise UserError(f"data.crop_size={cfg.data.crop_size} must be a multiple of method.output_stride={h.output_stride}")
        bins = ab_bins(h.bin_size)
        self.register_buffer("bins", bins, persistent=False)
        self.register_buffer("prior", torch.full((len(bins),), 1.0 / len(bins)))
        self.classify = nn.Conv3d(self.backbone.num_features, len(bins), 1)

    def views(self) -> ViewSpec:
        d = self.cfg.data
        transform = build_video_transform("finetune", d.crop_size, scale=(self.hparams.crop_scale_min, 1.0),
                                          normalize=False)  # RGB in [0, 1]: Lab needs it
        return ViewSpec(sampler=RandomClipSampler(d.num_frames, d.frame_stride), transforms={"clip": transform})

    @staticmethod
    def grey_input(rgb: torch.Tensor) -> torch.Tensor:
        """RGB in [0, 1] ``(B, 3, T, H, W)`` -> normalised grey clip (luma in all 3 channels)."""
        grey = luma(rgb).expand_as(rgb)
        mean = torch.tensor(VIDEO_MEAN, device=rgb.device).view(1, 3, 1, 1, 1)
        std = torch.tensor(VIDEO_STD, device=rgb.device).view(1, 3, 1, 1, 1)
        return (grey - mean) / std

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        h = self.hparams
        rgb = batch["video"][0].float()  # (B, 3, T, H, W) in [0, 1]
        tokens = self.backbone.forward_tokens(self.grey_input(rgb))
        if tokens.dim() != 5:
            raise UserError(f"colorization needs a convolutional backbone (forward_tokens -> (B, D, t, h, w)), "
                            f"{self.cfg.backbone.name} gives {tuple(tokens.shape)}")
        t, height, width = rgb.shape[2], rgb.shape[3] // h.output_stride, rgb.shape[4] // h.output_stride
        logits = F.interpolate(self.classify(tokens), size=(t, height, width), mode="trilinear", align_corners=False)
        with torch.no_grad():
            ab = F.avg_pool3d(rgb_to_lab(rgb)[:, 1:], (1, h.output_stride, h.output_stride))  # (B, 2, t, h, w)
            target = soft_encode(ab.movedim(1, -1).reshape(-1, 2), self.bins, h.neighbours, h.sigma)  # (N, Q)
            class_weights = None
            if h.rebalance:
                if self.training:
                    self.prior.mul_(h.prior_momentum).add_(target.mean(0), alpha=1 - h.prior_momentum)
                class_weights = rebalance_weights(self.prior, h.rebalance_lambda)
        loss = rebalanced_cross_entropy(logits.movedim(1, -1).reshape(-1, len(self.bins)), target, class_weights)
        return {"loss": loss, "embedding": tokens.flatten(2).mean(dim=2).detach()}
