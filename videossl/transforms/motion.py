"""Cheap motion measures from frame differences: Shuffle and Learn's high-motion windows (Misra et al., ECCV 2016)
and the arrow of time's static and camera-motion-only clips (Wei et al., CVPR 2018). ``(B, C, T, H, W)`` in."""
from __future__ import annotations

import torch


def frame_motion(clip: torch.Tensor) -> torch.Tensor:
    """Mean absolute difference between consecutive frames: ``(B, C, T, H, W)`` -> ``(B,)`` (0 when T=1).

    The cheap motion measure used to rank windows (Shuffle and Learn picks high-motion windows; Misra et al.
    use optical flow magnitude, frame differences are the cheap stand-in the issue asks for).
    """
    if clip.shape[2] < 2:
        return clip.new_zeros(clip.shape[0])
    return (clip[:, :, 1:] - clip[:, :, :-1]).abs().mean(dim=(1, 2, 3, 4))


def camera_only_motion(clip: torch.Tensor, max_shift: int = 2, ratio: float = 0.5) -> torch.Tensor:
    """Bool ``(B,)``: True when a global image translation explains most of the motion of a clip.

    Wei et al. (CVPR 2018) drop clips whose motion is only camera motion (they fit homographies to flow);
    here, cheaply: for each pair of consecutive frames the best integer shift within ``+-max_shift`` pixels
    is found, and a clip is camera-only when the aligned residual is below ``ratio`` times the raw
    difference (a pure pan leaves almost nothing after alignment; an object moving on a still background
    does not align away). Border pixels (``max_shift`` wide) are left out of both measures.
    """
    b, _, t, h, w = clip.shape
    if t < 2 or h <= 2 * max_shift or w <= 2 * max_shift:
        return torch.zeros(b, dtype=torch.bool, device=clip.device)
    m = max_shift
    previous, current = clip[:, :, :-1], clip[:, :, 1:]
    inner = current[..., m:h - m, m:w - m]
    raw = (inner - previous[..., m:h - m, m:w - m]).abs().mean(dim=(1, 3, 4))  # (B, T-1)
    best = raw
    for dy in range(-m, m + 1):
        for dx in range(-m, m + 1):
            shifted = previous[..., m + dy:h - m + dy, m + dx:w - m + dx]
            best = torch.minimum(best, (inner - shifted).abs().mean(dim=(1, 3, 4)))
    moving = raw.sum(1) > 1e-6
    return moving & (best.sum(1) < ratio * raw.sum(1))
