"""Drawing helpers shared by the ``show`` commands: clips back to pixels, heat-map overlays, GIFs.

Everything here works on plain tensors / arrays: a clip is float ``(C, T, H, W)`` (normalised as the
transform left it), pictures are uint8 ``(T, H, W, 3)`` arrays.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from PIL import Image, ImageDraw


def find_normalization(transform: Any, depth: int = 0) -> tuple[list[float], list[float]] | None:
    """``(mean, std)`` of the first ``Normalize`` step inside ``transform`` (a ``VideoTransform``, a v2
    ``Compose``, nested ``RandomApply``...), or None when it has none."""
    if depth > 6 or transform is None:
        return None
    mean, std = getattr(transform, "mean", None), getattr(transform, "std", None)
    if mean is not None and std is not None and type(transform).__name__ == "Normalize":
        return [float(m) for m in mean], [float(s) for s in std]
    for child_name in ("pipeline", "transforms"):
        child = getattr(transform, child_name, None)
        children = child if isinstance(child, (list, tuple)) else [child]
        for c in children:
            if c is None:
                continue
            found = find_normalization(c, depth + 1)
            if found is not None:
                return found
    return None


def clip_to_frames(clip: torch.Tensor, norm: tuple[Sequence[float], Sequence[float]] | None = None) -> np.ndarray:
    """Float clip ``(C, T, H, W)`` -> uint8 frames ``(T, H, W, 3)`` for display.

    ``norm``: the ``(mean, std)`` the transform normalised with (undone here). Without it, a clip already
    in [0, 1] is shown as is and anything else is min-max scaled. One channel (grayscale) is repeated;
    other channel counts (2-channel flow) show the first channel.
    """
    if clip.ndim != 4:
        raise ValueError(f"clip_to_frames expects (C, T, H, W), got {tuple(clip.shape)}")
    x = clip.detach().float().cpu()
    c = x.shape[0]
    if norm is not None:
        mean, std = (torch.tensor(v, dtype=x.dtype) for v in norm)
        if mean.numel() in (1, c):
            x = x * std.view(-1, 1, 1, 1) + mean.view(-1, 1, 1, 1)
    if norm is None and (x.min() < 0 or x.max() > 1):
        x = (x - x.min()) / (x.max() - x.min()).clamp_min(1e-8)
    if c == 1:
        x = x.expand(3, -1, -1, -1)
    elif c != 3:
        x = x[:1].expand(3, -1, -1, -1)
    return (x.clamp(0, 1) * 255).round().to(torch.uint8).permute(1, 2, 3, 0).numpy()


def resize_frames(frames: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """uint8 ``(T, H, W, 3)`` -> ``(T, size[0], size[1], 3)`` (bilinear)."""
    x = torch.from_numpy(frames).permute(0, 3, 1, 2).float()
    x = torch.nn.functional.interpolate(x, size=size, mode="bilinear", align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1).numpy()


def normalize_map(values: torch.Tensor) -> torch.Tensor:
    """Scale a heat map (any shape) to [0, 1] by its own min and max (a constant map becomes zeros)."""
    values = values.float()
    low, high = values.min(), values.max()
    return (values - low) / (high - low).clamp_min(1e-8)


def upsample_map(values: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    """A ``(t, h, w)`` map on the token / feature grid -> ``(T, H, W)`` on the clip (trilinear)."""
    grid = values.float()[None, None]
    return torch.nn.functional.interpolate(grid, size=size, mode="trilinear", align_corners=False)[0, 0]


def overlay(frames: np.ndarray, heat: torch.Tensor | np.ndarray, alpha: float = 0.5, cmap: str = "inferno") -> np.ndarray:
    """Blend a heat map in [0, 1] ``(T, H, W)`` over uint8 frames ``(T, H, W, 3)`` with a matplotlib colour map."""
    from matplotlib import colormaps

    heat = np.asarray(heat, dtype=np.float32)
    coloured = colormaps[cmap](np.clip(heat, 0, 1))[..., :3] * 255.0  # (T, H, W, 3)
    out = (1 - alpha) * frames.astype(np.float32) + alpha * coloured
    return out.round().clip(0, 255).astype(np.uint8)


def label_image(image: np.ndarray, text: str, height: int = 12) -> np.ndarray:
    """Put ``text`` in a black band of ``height`` px above a uint8 ``(H, W, 3)`` image (PIL's default font)."""
    band = Image.new("RGB", (image.shape[1], height), (0, 0, 0))
    ImageDraw.Draw(band).text((2, 0), text, fill=(255, 255, 255))
    return np.concatenate([np.asarray(band), image], axis=0)


def mosaic(cells: Sequence[Sequence[np.ndarray]], pad: int = 2, background: int = 32) -> np.ndarray:
    """Rows of uint8 ``(H, W, 3)`` cells (rows may differ in length, cells in size) -> one image."""
    heights = [max(c.shape[0] for c in row) if row else 0 for row in cells]
    widths = [sum(c.shape[1] for c in row) + pad * (len(row) - 1) for row in cells]
    canvas = np.full((sum(heights) + pad * (len(cells) + 1), max(widths) + 2 * pad, 3), background, np.uint8)
    y = pad
    for row, h in zip(cells, heights):
        x = pad
        for cell in row:
            canvas[y:y + cell.shape[0], x:x + cell.shape[1]] = cell
            x += cell.shape[1] + pad
        y += h + pad
    return canvas


def save_gif(images: Sequence[np.ndarray], path: str | Path, fps: float = 4.0) -> Path:
    """Write uint8 ``(H, W, 3)`` images (all the same size) as a looping animated GIF."""
    if not images:
        raise ValueError("save_gif: no images")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    pictures = [Image.fromarray(np.ascontiguousarray(im)) for im in images]
    pictures[0].save(path, save_all=True, append_images=pictures[1:], duration=int(1000 / fps), loop=0)
    return path


def format_indices(indices: Sequence[int], limit: int = 10) -> str:
    """``0,2,4,...,30`` style: all indices when few, else the first ``limit - 2``, an ellipsis and the last."""
    values = [int(i) for i in indices]
    if len(values) <= limit:
        return ",".join(map(str, values))
    return ",".join(map(str, values[:limit - 2])) + ",...," + str(values[-1])


def pick_columns(length: int, max_columns: int) -> list[int]:
    """At most ``max_columns`` evenly spaced positions in ``range(length)`` (all when they fit)."""
    if length <= max_columns:
        return list(range(length))
    return sorted({int(round(v)) for v in np.linspace(0, length - 1, max_columns)})
