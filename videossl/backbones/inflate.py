"""Image ViT weights inflated into a TimeSformer (Bertasius et al., ICML 2021), as SVT initialises its video
model (Ranasinghe et al., CVPR 2022, sec. 4: TimeSformer-B from ImageNet weights).

An image ViT block is ``h += attn(norm1(h)); h += mlp(norm2(h))``. A divided space-time block adds a temporal
branch in front, ``h += temporal_fc(temporal_attn(temporal_norm(h)))``, and runs the spatial attention per
frame. TimeSformer's ``load_pretrained`` (``vit.py``) initialises a video model from an image one by:

- patch embedding, CLS token, spatial position table, spatial attention, MLPs and norms: copied;
- temporal attention and its norm: copies of the block's spatial attention and ``norm1``;
- ``temporal_fc``: zeros, so the temporal branch adds nothing at first. TimeSformer's code zeroes it in
  every block but the first (an ``if i > 0`` quirk); we zero it in all blocks, so the inflated network
  is exactly the image network applied to each frame (with the CLS token averaged over frames);
- time position table: zeros (TimeSformer creates it with ``torch.zeros`` and never loads it).

A spatial table built for another image size is resized bicubically on its 2-D grid (DeiT / timm's
``resize_pos_embed``). Image checkpoints come in three key layouts, all read here: timm / DINO
(``blocks.0.attn.qkv``; DINO's released ``dino_vitbase16_pretrain.pth``, DeiT's ``{"model": ...}``),
transformers files (``encoder.layer.0.attention.attention.query``; ``save_pretrained`` folders, optionally
under ``vit.``) and transformers 5 in-memory names (``layers.0.attention.q_proj``).
"""
from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Mapping

import torch
import torch.nn.functional as F
from torch import nn

from .weights import WeightsError, read_state_dict

# Key prefixes of task models and training checkpoints around the ViT itself.
_OUTER_PREFIXES = ("module.", "teacher.", "student.", "backbone.", "vit.", "model.")

# (pattern, canonical timm-style name); {i} is the block index. q/k/v pieces are joined into qkv afterwards.
_RENAMES: tuple[tuple[str, str], ...] = (
    # transformers checkpoint files (save_pretrained, transformers 4 module names)
    (r"embeddings\.cls_token", "cls_token"),
    (r"embeddings\.position_embeddings", "pos_embed"),
    (r"embeddings\.patch_embeddings\.projection\.(weight|bias)", r"patch_embed.proj.\1"),
    (r"encoder\.layer\.(\d+)\.layernorm_before\.(weight|bias)", r"blocks.\1.norm1.\2"),
    (r"encoder\.layer\.(\d+)\.attention\.attention\.(query|key|value)\.(weight|bias)", r"blocks.\1.attn.\2.\3"),
    (r"encoder\.layer\.(\d+)\.attention\.output\.dense\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"encoder\.layer\.(\d+)\.layernorm_after\.(weight|bias)", r"blocks.\1.norm2.\2"),
    (r"encoder\.layer\.(\d+)\.intermediate\.dense\.(weight|bias)", r"blocks.\1.mlp.fc1.\2"),
    (r"encoder\.layer\.(\d+)\.output\.dense\.(weight|bias)", r"blocks.\1.mlp.fc2.\2"),
    (r"layernorm\.(weight|bias)", r"norm.\1"),
    # transformers 5 module names (a state_dict() taken in memory)
    (r"layers\.(\d+)\.layernorm_before\.(weight|bias)", r"blocks.\1.norm1.\2"),
    (r"layers\.(\d+)\.attention\.(q|k|v)_proj\.(weight|bias)", r"blocks.\1.attn.\2.\3"),
    (r"layers\.(\d+)\.attention\.o_proj\.(weight|bias)", r"blocks.\1.attn.proj.\2"),
    (r"layers\.(\d+)\.layernorm_after\.(weight|bias)", r"blocks.\1.norm2.\2"),
    (r"layers\.(\d+)\.mlp\.(fc1|fc2)\.(weight|bias)", r"blocks.\1.mlp.\2.\3"),
)
_QKV_PARTS = {"query": 0, "key": 1, "value": 2, "q": 0, "k": 1, "v": 2}
# Canonical (timm / DINO) names that need no renaming.
_CANONICAL = re.compile(r"(cls_token|pos_embed|patch_embed\.proj\.(weight|bias)|norm\.(weight|bias)|"
                        r"blocks\.\d+\.(norm1|norm2|attn\.qkv|attn\.proj|mlp\.fc1|mlp\.fc2)\.(weight|bias))")


def canonical_image_vit(state: Mapping[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], list[str]]:
    """Any supported image-ViT layout -> timm / DINO names (``blocks.{i}.attn.qkv.weight`` ...).

    Returns ``(canonical state, keys left out)``; left out are classification / DINO heads and poolers.
    """
    out: dict[str, torch.Tensor] = {}
    qkv: dict[tuple[int, str], list[torch.Tensor | None]] = {}
    left_out: list[str] = []
    for original, value in state.items():
        key = original
        stripped = True
        while stripped:  # "module.backbone.vit.x" -> "x"
            stripped = False
            for prefix in _OUTER_PREFIXES:
                if key.startswith(prefix):
                    key, stripped = key[len(prefix):], True
        if _CANONICAL.fullmatch(key):
            out[key] = value
            continue
        for pattern, target in _RENAMES:
            match = re.fullmatch(pattern, key)
            if match:
                key = match.expand(target)
                break
        else:
            left_out.append(original)
            continue
        piece = re.fullmatch(r"blocks\.(\d+)\.attn\.(query|key|value|q|k|v)\.(weight|bias)", key)
        if piece:
            parts = qkv.setdefault((int(piece[1]), piece[3]), [None, None, None])
            parts[_QKV_PARTS[piece[2]]] = value
        else:
            out[key] = value
    for (block, kind), parts in qkv.items():
        if any(p is None for p in parts):
            raise WeightsError(f"image ViT block {block}: the attention {kind} lacks one of query/key/value")
        out[f"blocks.{block}.attn.qkv.{kind}"] = torch.cat(parts, dim=0)  # timm's qkv = [q; k; v] rows
    return out, left_out


def resize_spatial_table(table: torch.Tensor, grid: tuple[int, int]) -> torch.Tensor:
    """Patch position table ``(1, N, D)`` on a square grid -> ``(1, grid[0] * grid[1], D)`` (bicubic, as
    DeiT / timm resize position embeddings for a new image size)."""
    n, d = table.shape[1], table.shape[2]
    side = int(round(math.sqrt(n)))
    if side * side != n:
        raise WeightsError(f"image ViT position table has {n} patch positions, not a square grid")
    if (side, side) == tuple(grid):
        return table
    image = table.reshape(1, side, side, d).permute(0, 3, 1, 2).float()
    image = F.interpolate(image, size=tuple(grid), mode="bicubic", align_corners=False)
    return image.permute(0, 2, 3, 1).reshape(1, grid[0] * grid[1], d).to(table.dtype)


def image_vit_to_timesformer(image_state: Mapping[str, torch.Tensor], backbone: nn.Module,
                             source: str = "image ViT") -> tuple[dict[str, torch.Tensor], list[str]]:
    """Inflate an image ViT state dict into the keys of ``backbone`` (a ``TimesformerBackbone``).

    Returns ``(state dict for backbone.load_state_dict(strict=True), image keys left out)``. Raises
    ``WeightsError`` naming ``source`` when depth, width or patch size do not match.
    """
    image, left_out = canonical_image_vit(image_state)
    ours = backbone.state_dict()
    prefix = getattr(backbone, "library_prefix", "model.")
    depth = sum(1 for k in ours if re.fullmatch(re.escape(prefix) + r"encoder\.layer\.\d+\.layernorm_before\.weight", k))
    image_depth = sum(1 for k in image if re.fullmatch(r"blocks\.\d+\.norm1\.weight", k))
    if image_depth != depth:
        raise WeightsError(f"{source}: has {image_depth} transformer blocks, the TimeSformer has {depth}")
    for needed in ("cls_token", "pos_embed", "patch_embed.proj.weight", "norm.weight"):
        if needed not in image:
            raise WeightsError(f"{source}: no '{needed}' (or its transformers name); is this an image ViT checkpoint?")

    missing_bias = [i for i in range(depth) if f"blocks.{i}.attn.qkv.bias" not in image]
    if missing_bias:
        raise WeightsError(f"{source}: block {missing_bias[0]} has no qkv bias (a ViT built with qkv_bias=False?)")
    out: dict[str, torch.Tensor] = {}

    def put(name: str, value: torch.Tensor) -> None:
        key = prefix + name
        if tuple(value.shape) != tuple(ours[key].shape):
            raise WeightsError(f"{source}: '{key}' would get shape {tuple(value.shape)}, the TimeSformer expects "
                               f"{tuple(ours[key].shape)} (width, patch size or channels differ)")
        out[key] = value.to(ours[key].dtype)

    put("embeddings.cls_token", image["cls_token"])
    put("embeddings.patch_embeddings.projection.weight", image["patch_embed.proj.weight"])
    put("embeddings.patch_embeddings.projection.bias", image["patch_embed.proj.bias"])
    pos = image["pos_embed"]
    grid = getattr(backbone, "built_space")
    put("embeddings.position_embeddings", torch.cat([pos[:, :1], resize_spatial_table(pos[:, 1:], grid)], dim=1))
    put("embeddings.time_embeddings", torch.zeros_like(ours[prefix + "embeddings.time_embeddings"]))
    for i in range(depth):
        src, dst = f"blocks.{i}.", f"encoder.layer.{i}."
        for kind in ("weight", "bias"):
            put(dst + f"layernorm_before.{kind}", image[src + f"norm1.{kind}"])
            put(dst + f"attention.attention.qkv.{kind}", image[src + f"attn.qkv.{kind}"])
            put(dst + f"attention.output.dense.{kind}", image[src + f"attn.proj.{kind}"])
            put(dst + f"layernorm_after.{kind}", image[src + f"norm2.{kind}"])
            put(dst + f"intermediate.dense.{kind}", image[src + f"mlp.fc1.{kind}"])
            put(dst + f"output.dense.{kind}", image[src + f"mlp.fc2.{kind}"])
            # temporal branch: a copy of the spatial attention, its output projection zeroed (TimeSformer)
            put(dst + f"temporal_layernorm.{kind}", image[src + f"norm1.{kind}"])
            put(dst + f"temporal_attention.attention.qkv.{kind}", image[src + f"attn.qkv.{kind}"])
            put(dst + f"temporal_attention.output.dense.{kind}", image[src + f"attn.proj.{kind}"])
            put(dst + f"temporal_dense.{kind}", torch.zeros_like(ours[prefix + dst + f"temporal_dense.{kind}"]))
    for kind in ("weight", "bias"):
        put(f"layernorm.{kind}", image[f"norm.{kind}"])
    missing = [k for k in ours if k not in out]
    if missing:
        raise WeightsError(f"{source}: inflation left {len(missing)} TimeSformer keys unset, e.g. {missing[0]}")
    return out, left_out


def inflate_image_vit(backbone: nn.Module, path: str | Path) -> list[str]:
    """Load the image ViT at ``path`` (local file or ``save_pretrained`` folder) into the TimeSformer
    ``backbone``, inflated as TimeSformer / SVT do. Returns the image keys left out (heads)."""
    if not hasattr(backbone, "built_space"):
        raise WeightsError(f"{path}: image ViT inflation needs a TimeSformer backbone, got {type(backbone).__name__}")
    try:
        image_state, _ = read_state_dict(path)
    except KeyError as err:  # a checkpoint dict without tensors where we look
        raise WeightsError(f"{path}: not an image ViT checkpoint ({err})") from None
    state, left_out = image_vit_to_timesformer(image_state, backbone, source=str(path))
    backbone.load_state_dict(state, strict=True)
    return left_out
