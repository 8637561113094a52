"""Masked autoencoding losses on video tubelets (He et al., CVPR 2022, MAE; Tong et al., NeurIPS 2022, VideoMAE)."""
from __future__ import annotations

import torch


def patchify(video: torch.Tensor, tubelet_size: int, patch_size: int) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B, N, tubelet * patch * patch, C)`` with tokens ordered (t, h, w), the order of
    the ViT's Conv3d patch embedding (``N = T/tubelet * H/patch * W/patch``)."""
    b, c, t, h, w = video.shape
    if t % tubelet_size or h % patch_size or w % patch_size:
        raise ValueError(f"patchify: T={t}, H={h}, W={w} must be multiples of tubelet {tubelet_size} / patch {patch_size}")
    nt, nh, nw = t // tubelet_size, h // patch_size, w // patch_size
    x = video.reshape(b, c, nt, tubelet_size, nh, patch_size, nw, patch_size)
    x = x.permute(0, 2, 4, 6, 3, 5, 7, 1)  # (B, nt, nh, nw, tubelet, p, p, C)
    return x.reshape(b, nt * nh * nw, tubelet_size * patch_size * patch_size, c)


def pixel_targets(patches: torch.Tensor, normalize: bool = True, eps: float = 1e-6) -> torch.Tensor:
    """Regression targets ``(B, N, P * C)`` from ``patchify`` output ``(B, N, P, C)``.

    normalize: VideoMAE's normalised pixels (MAE sec. 4 "norm_pix_loss"): each channel of each tubelet is
    standardised over its own pixels, ``(x - mean) / (std + eps)`` (unbiased std, as in the official code).
    """
    if normalize:
        mean = patches.mean(dim=-2, keepdim=True)
        std = patches.var(dim=-2, unbiased=True, keepdim=True).sqrt()
        patches = (patches - mean) / (std + eps)
    return patches.flatten(2)


def masked_reconstruction_loss(prediction: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """MAE's loss: mean squared error per patch, averaged over the MASKED patches only (MAE sec. 3).

    prediction, target: ``(B, N, P)``; mask: bool ``(B, N)``, True = masked (the decoder's job). With the same
    number of masked patches in every sample, the mean over processes equals the global-batch loss.
    """
    per_patch = (prediction.float() - target.detach().float()).pow(2).mean(dim=-1)  # (B, N)
    mask = mask.to(per_patch.dtype)
    return (per_patch * mask).sum() / mask.sum().clamp_min(1.0)
