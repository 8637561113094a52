"""Context-encoder inpainting (Pathak et al., "Context Encoders: Feature Learning by Inpainting", CVPR 2016),
per frame of a clip (at T>1 the hole is a tube through every frame, so it cannot be copied from a neighbour).

The central square of the crop (half its side: a quarter of the area, the paper's central region) is filled
with the dataset mean (0 after normalisation); the backbone encodes the masked clip and a small up-convolution
decoder (``InpaintingDecoder``) reconstructs the picture. The loss is the paper's reconstruction loss: L2 on the
pixels of the hole (normalised units). The adversarial term of the paper (weight 0.001) is not implemented.
``random_position`` places the square anywhere instead of the centre (the paper's "random block" variant).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.sampling import RandomClipSampler, ViewSpec
from ..errors import UserError
from ..transforms.video import build_video_transform
from .base import Method, MethodConfig, StepInfo


@dataclass
class InpaintingConfig(MethodConfig):
    name: str = "inpainting"
    hole_fraction: float = 0.5  # Pathak et al.: central 64x64 of a 128x128 image
    random_position: bool = False
    decoder_dim: int = 64
    decoder_upsamples: int = 4  # x2 spatial steps (tiny_r3d: 1/16 -> full size; r2d3d / resnets: 5)
    crop_scale_min: float = 0.3


class InpaintingDecoder(nn.Module):
    """``(B, D, t, h, w)`` features -> ``(B, 3, T, H, W)``: ``upsamples`` x [x2 upsample in space, 3x3x3 conv,
    BN, ReLU] (channels halving from ``dim``), a last conv to 3 channels, resized to the exact output size
    (the paper's 5 up-convolutions, in 3D)."""

    def __init__(self, in_dim: int, dim: int = 64, upsamples: int = 4, out_channels: int = 3):
        super().__init__()
        layers: list[nn.Module] = [nn.Conv3d(in_dim, dim, 1)]
        for _ in range(upsamples):
            nxt = max(dim // 2, 8)
            layers += [nn.Upsample(scale_factor=(1, 2, 2), mode="nearest"), nn.Conv3d(dim, nxt, 3, padding=1, bias=False),
                       nn.BatchNorm3d(nxt), nn.ReLU(inplace=True)]
            dim = nxt
        layers.append(nn.Conv3d(dim, out_channels, 3, padding=1))
        self.net = nn.Sequential(*layers)

    def forward(self, features: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
        return F.interpolate(self.net(features), size=size, mode="trilinear", align_corners=False)


def hole_mask(batch: int, height: int, width: int, fraction: float, random_position: bool,
              device: torch.device) -> torch.Tensor:
    """Bool ``(B, 1, 1, H, W)``, True inside a square hole of ``fraction`` of the side (centre or random)."""
    side_h, side_w = max(1, int(height * fraction)), max(1, int(width * fraction))
    mask = torch.zeros(batch, 1, 1, height, width, dtype=torch.bool, device=device)
    for n in range(batch):
        if random_position:
            top = int(torch.randint(0, height - side_h + 1, ()))
            left = int(torch.randint(0, width - side_w + 1, ()))
        else:
            top, left = (height - side_h) // 2, (width - side_w) // 2
        mask[n, :, :, top:top + side_h, left:left + side_w] = True
    return mask


class Inpainting(Method):
    Config = InpaintingConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if not 0 < h.hole_fraction < 1:
            raise UserError(f"method.hole_fraction must be in (0, 1), got {h.hole_fraction}")
        self.decoder = InpaintingDecoder(self.backbone.num_features, h.decoder_dim, h.decoder_upsamples)

    def views(self) -> ViewSpec:
        d = self.cfg.data
        transform = build_video_transform("finetune", d.crop_size, scale=(self.hparams.crop_scale_min, 1.0))
        return ViewSpec(sampler=RandomClipSampler(d.num_frames, d.frame_stride), transforms={"clip": transform})

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        clips = batch["video"][0]  # (B, C, T, H, W), normalised: 0 is the dataset mean
        b, _, t, height, width = clips.shape
        mask = hole_mask(b, height, width, self.hparams.hole_fraction, self.hparams.random_position, clips.device)
        tokens = self.backbone.forward_tokens(clips.masked_fill(mask, 0.0))
        if tokens.dim() != 5:
            raise UserError(f"inpainting needs a convolutional backbone (forward_tokens -> (B, D, t, h, w)), "
                            f"{self.cfg.backbone.name} gives {tuple(tokens.shape)}")
        prediction = self.decoder(tokens, (t, height, width))
        hole = mask.expand_as(clips)
        loss = ((prediction.float() - clips.float()) ** 2)[hole].mean()
        return {"loss": loss, "embedding": tokens.flatten(2).mean(dim=2).detach()}
