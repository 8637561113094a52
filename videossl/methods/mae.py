"""Masked autoencoders for video (Tong et al., "VideoMAE", NeurIPS 2022; Feichtenhofer et al., "Masked Autoencoders
As Spatiotemporal Learners", NeurIPS 2022), the T=1 case being image MAE (He et al., CVPR 2022).

One clip per sample; 90% of its tubelet tokens are masked with a tube mask (the same spatial positions at every
time step, VideoMAE sec. 3.3); the ViT encoder runs on the visible tokens only (``forward_tokens(x, keep_index)``);
a light decoder predicts the normalised pixels of the masked tubelets. Needs a ViT backbone with ``patch_size``
and ``tubelet_size`` (``tiny_videomae``, ``videomae_*``). At T=1 with a tubelet of 2 frames the image is
repeated to the tubelet length (so one model serves images and video); otherwise T must divide by the tubelet.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from ..data.sampling import RandomClipSampler, ViewSpec
from ..errors import UserError
from ..heads import MAEDecoder
from ..losses.mae import masked_reconstruction_loss, patchify, pixel_targets
from ..transforms.masks import fit_clip_to_tubelet
from ..transforms.video import build_video_transform, tube_mask
from .base import Method, MethodConfig, StepInfo


@dataclass
class MAEConfig(MethodConfig):
    name: str = "mae"
    mask_ratio: float = 0.9  # VideoMAE: tube masking at 90% (MAE images: 75% random)
    decoder_dim: int = 64  # VideoMAE ViT-B: 384
    decoder_depth: int = 1  # VideoMAE: 4 blocks
    decoder_heads: int = 2  # VideoMAE: 6
    norm_pix_loss: bool = True  # MAE / VideoMAE: per-patch normalised pixel targets
    crop_scale_min: float = 0.2  # MAE: RandomResizedCrop(0.2, 1); VideoMAE: multi-scale crop


class MAE(Method):
    Config = MAEConfig
    smoke_overrides = ("backbone.name=tiny_videomae",)

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if not hasattr(self.backbone, "tubelet_size") or not hasattr(self.backbone, "patch_size"):
            raise UserError(f"method mae needs a ViT backbone with patch_size and tubelet_size (e.g. tiny_videomae), "
                            f"got backbone.name={cfg.backbone.name}")
        if not 0.0 <= h.mask_ratio < 1.0:
            raise UserError(f"method.mask_ratio must be in [0, 1), got {h.mask_ratio}")
        self.tubelet, self.patch = int(self.backbone.tubelet_size), int(self.backbone.patch_size)
        patch_dim = self.tubelet * self.patch * self.patch * self.backbone.in_channels
        self.decoder = MAEDecoder(self.backbone.num_features, patch_dim, h.decoder_dim, h.decoder_depth,
                                  h.decoder_heads)

    def views(self):
        d = self.cfg.data
        transform = build_video_transform("finetune", d.crop_size, scale=(self.hparams.crop_scale_min, 1.0))
        return ViewSpec(sampler=RandomClipSampler(d.num_frames, d.frame_stride), transforms={"clip": transform})

    def fit_tubelet(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)``: an image (T=1) is repeated to the tubelet length; other T must divide by it."""
        try:
            return fit_clip_to_tubelet(clip, self.tubelet)
        except ValueError:
            raise UserError(f"data.num_frames={clip.shape[2]} must be 1 or a multiple of the backbone's "
                            f"tubelet_size={self.tubelet}") from None

    def random_tube_mask(self, batch: int, grid: tuple[int, int, int], device: torch.device) -> torch.Tensor:
        """Bool ``(B, N)`` over the (t, h, w)-ordered tokens, True = masked; a fresh tube mask per sample."""
        masks = [tube_mask(*grid, mask_ratio=self.hparams.mask_ratio).flatten() for _ in range(batch)]
        return torch.stack(masks).to(device)

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        clip = self.fit_tubelet(batch["video"][0])  # (B, C, T, H, W)
        grid = self.backbone.grid(clip)
        num_tokens = grid[0] * grid[1] * grid[2]
        mask = self.random_tube_mask(clip.shape[0], grid, clip.device)  # (B, N)
        # Equal visible count per sample (tube masking is exact), so the kept indices stack into (B, N_keep).
        keep_index = torch.argsort(mask.to(torch.int8), dim=1, stable=True)[:, : int((~mask[0]).sum())]
        visible = self.backbone.forward_tokens(clip, keep_index=keep_index)  # (B, N_keep, D)
        prediction = self.decoder(visible, keep_index, num_tokens)  # (B, N, P)
        # The encoder's own input is what is reconstructed: residual frames for a residual-input backbone.
        seen = self.backbone.transform_input(clip) if hasattr(self.backbone, "transform_input") else clip
        target = pixel_targets(patchify(seen, self.tubelet, self.patch), self.hparams.norm_pix_loss)
        loss = masked_reconstruction_loss(prediction, target, mask)
        return {"loss": loss, "embedding": visible.mean(dim=1).detach()}
