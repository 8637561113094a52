"""Pictures written from tensors, for the commands that leave images behind (sound-source localisation overlays).

A bottom-layer module (torch, numpy, matplotlib's colour maps and Pillow only), so the methods, evaluation and
``viz/`` can all use it.
"""
from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np
import torch
import torch.nn.functional as F
from matplotlib import colormaps
from PIL import Image

from .files import make_dir


def save_localisation_overlays(frames: torch.Tensor, maps: torch.Tensor, out_dir: str | Path,
                               names: Sequence[str] | None = None, alpha: float = 0.5) -> list[Path]:
    """Write one PNG per clip: its middle frame with the localisation map on top (jet colour map).

    frames: ``(B, C, T, H, W)`` (any range: each frame is min-max scaled for display); maps: ``(B, h, w)``
    (upsampled bilinearly to ``H x W`` and min-max scaled per clip). Returns the written paths.
    """
    out = Path(out_dir)
    make_dir(out, "output directory")
    middle = frames[:, :, frames.shape[2] // 2].float()  # (B, C, H, W)
    heat = F.interpolate(maps[:, None].float(), size=middle.shape[-2:], mode="bilinear", align_corners=False)[:, 0]
    paths = []
    for i in range(middle.shape[0]):
        image = middle[i]
        image = (image - image.min()) / (image.max() - image.min()).clamp_min(1e-6)
        if image.shape[0] == 1:
            image = image.expand(3, -1, -1)
        h = heat[i]
        h = (h - h.min()) / (h.max() - h.min()).clamp_min(1e-6)
        colour = torch.from_numpy(colormaps["jet"](h.numpy())[..., :3]).permute(2, 0, 1).float()
        blended = ((1 - alpha) * image[:3] + alpha * colour).clamp(0, 1)
        pixels = (blended.permute(1, 2, 0).numpy() * 255).round().astype(np.uint8)
        name = names[i] if names is not None else f"localisation_{i:03d}"
        path = out / f"{name}.png"
        Image.fromarray(pixels).save(path)
        paths.append(path)
    return paths
