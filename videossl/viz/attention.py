"""``videossl show attention ENCODER VIDEO``: where an encoder looks, over space and time.

- ViT backbones (TimeSformer, ViViT, frame-wise ViT): the last block's CLS-token attention per head, as
  DINO (Caron et al., ICCV 2021, fig. 1/3) and SVT (Ranasinghe et al., CVPR 2022) show it. SDPA does not
  return attention weights, so forward hooks catch the last block's query and key projections and the
  weights are recomputed, ``softmax(q k^T / sqrt(d_head))`` per head, on exactly the tokens the block saw.
  TimeSformer's CLS attends over space frame by frame (divided attention), so its map is per frame;
  ViViT's joint attention gives one map over (t, h, w). VideoMAE has no CLS token: its map is the
  attention each patch *receives*, averaged over all queries.
- CNNs (3D or frame-wise): a class-agnostic activation map, the mean over channels of the last feature
  map ``forward_tokens(x)`` ``(B, D, t, h, w)``.

Maps are upsampled to the clip (trilinear) and scaled to [0, 1] over the whole clip per head, then drawn
over the frames: ``<out>.png`` (rows: frames, each head, mean of heads) and ``<out>.gif``.
"""
from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any, NamedTuple

import torch
from omegaconf import OmegaConf

from ..backbones.framewise import FrameViT
from ..backbones.video_vit import VideoTransformer
from ..data.datasets import DatasetIndex, VideoEntry
from ..data.video_dataset import VideoDataset
from ..errors import UserError
from ..eval.features import load_eval_encoder
from ..eval.views import multi_view_spec
from .render import (clip_to_frames, find_normalization, label_image, mosaic, normalize_map, overlay, pick_columns,
                     resize_frames, save_gif, upsample_map)
from .views import RecordingSampler, output_paths


class AttentionMaps(NamedTuple):
    """maps: ``(B, heads, t, h, w)`` on the token / feature grid (heads = 1 for CNN activation maps);
    kind: ``"cls"`` (CLS attention), ``"received"`` (no CLS: mean attention received) or ``"activation"``."""

    maps: torch.Tensor
    kind: str


def is_vit(backbone: torch.nn.Module) -> bool:
    return isinstance(backbone, (VideoTransformer, FrameViT))


def _last_block_qk(backbone: torch.nn.Module) -> tuple[list[torch.nn.Module], int]:
    """The modules whose outputs give q and k in the last block, and the number of heads.

    One module (TimeSformer's spatial ``qkv``) or two (``query``/``key`` in VideoMAE, ``q_proj``/``k_proj``
    in ViViT and ViT). TimeSformer's temporal attention has no CLS token and is left out.
    """
    blocks = list(backbone.model.layers if isinstance(backbone, FrameViT) else backbone._blocks())
    block = blocks[-1]
    heads = int(backbone.model.config.num_attention_heads)
    named = dict(block.named_modules())
    if "attention.attention.qkv" in named:  # TimeSformer: the spatial attention holds the CLS token
        return [named["attention.attention.qkv"]], heads
    q = [m for n, m in named.items() if n.rsplit(".", 1)[-1] in ("query", "q_proj") and "temporal" not in n]
    k = [m for n, m in named.items() if n.rsplit(".", 1)[-1] in ("key", "k_proj") and "temporal" not in n]
    if len(q) != 1 or len(k) != 1:
        raise UserError(f"{type(backbone).__name__}: cannot find the last block's query/key projections")
    return [q[0], k[0]], heads


def attention_weights(q: torch.Tensor, k: torch.Tensor, heads: int) -> torch.Tensor:
    """``(B', N, heads * d)`` queries and keys -> attention ``(B', heads, N, N)``, rows summing to 1."""
    b, n, width = q.shape
    d = width // heads
    q = q.float().reshape(b, n, heads, d).transpose(1, 2)
    k = k.float().reshape(b, n, heads, d).transpose(1, 2)
    return torch.softmax(q @ k.transpose(-2, -1) * d ** -0.5, dim=-1)


@torch.no_grad()
def vit_attention(backbone: torch.nn.Module, clip: torch.Tensor) -> AttentionMaps:
    """Last-layer attention of a ViT backbone on clips ``(B, C, T, H, W)`` -> ``(B, heads, t, h, w)``."""
    b, _, t, hh, ww = clip.shape
    if isinstance(backbone, VideoTransformer):
        try:
            grid = backbone.grid(clip)
        except ValueError as err:
            raise UserError(str(err)) from None
    else:
        p = backbone.patch_size
        if hh % p or ww % p:
            raise UserError(f"{type(backbone).__name__}: H={hh}, W={ww} must be multiples of patch_size={p}")
        grid = (t, hh // p, ww // p)
    modules, heads = _last_block_qk(backbone)
    outputs: dict[int, torch.Tensor] = {}  # by position in ``modules`` (VideoMAE computes k before q)

    def keep(position: int):
        return lambda _m, _i, out: outputs.__setitem__(position, out)

    hooks = [m.register_forward_hook(keep(i)) for i, m in enumerate(modules)]
    try:
        backbone.eval()
        backbone.forward_features(clip)
    finally:
        for h in hooks:
            h.remove()
    if len(modules) == 1:  # fused qkv (B', N, 3 * D)
        q, k, _ = outputs[0].chunk(3, dim=-1)
    else:
        q, k = outputs[0], outputs[1]
    attn = attention_weights(q, k, heads)  # (B', heads, N, N)
    gt, gh, gw = grid
    n = attn.shape[-1]
    if n == gh * gw + 1 and attn.shape[0] == b * gt:  # CLS per frame (TimeSformer spatial, frame-wise ViT)
        maps = attn[:, :, 0, 1:].reshape(b, gt, heads, gh, gw).transpose(1, 2)
        return AttentionMaps(maps, "cls")
    if n == gt * gh * gw + 1:  # joint space-time CLS (ViViT)
        return AttentionMaps(attn[:, :, 0, 1:].reshape(b, heads, gt, gh, gw), "cls")
    if n == gt * gh * gw:  # no CLS (VideoMAE): attention received by each patch, mean over queries
        return AttentionMaps(attn.mean(dim=2).reshape(b, heads, gt, gh, gw), "received")
    raise UserError(f"{type(backbone).__name__}: {n} tokens in the last block do not match the grid {grid}")


@torch.no_grad()
def activation_map(backbone: torch.nn.Module, clip: torch.Tensor) -> AttentionMaps:
    """Class-agnostic activation map of a CNN: channel mean of ``forward_tokens`` -> ``(B, 1, t, h, w)``."""
    backbone.eval()
    try:
        tokens = backbone.forward_tokens(clip)
    except NotImplementedError:
        raise UserError(f"{type(backbone).__name__} exposes no feature map (forward_tokens)") from None
    if tokens.ndim != 5:
        raise UserError(f"{type(backbone).__name__}: last feature map has shape {tuple(tokens.shape)}, "
                        "expected (B, D, t, h, w)")
    return AttentionMaps(tokens.float().mean(dim=1, keepdim=True), "activation")


def encoder_maps(backbone: torch.nn.Module, clip: torch.Tensor) -> AttentionMaps:
    """ViTs: last-layer attention; everything else with a spatial feature map: activation map."""
    if getattr(backbone, "modality", "video") != "video":
        raise UserError(f"{type(backbone).__name__} is an audio backbone; attention maps need a video encoder")
    return vit_attention(backbone, clip) if is_vit(backbone) else activation_map(backbone, clip)


def maps_on_clip(maps: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
    """``(heads, t, h, w)`` -> ``(heads, T, H, W)`` in [0, 1], each head scaled over the whole clip."""
    return torch.stack([normalize_map(upsample_map(m, size)) for m in maps])


# ----------------------------------------------------------------------------------------------- drawing


def draw_attention(frames: Any, heat: torch.Tensor, kind: str, png: Path, gif: Path | None, title: str,
                   indices: tuple[int, ...], max_frames: int = 8) -> list[Path]:
    """frames: uint8 ``(T, H, W, 3)``; heat: ``(heads, T, H, W)`` in [0, 1]. Rows: frames, heads, mean."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = [("frames", None)] + [(f"head {i}" if kind != "activation" else "activation", heat[i])
                                 for i in range(heat.shape[0])]
    if heat.shape[0] > 1:
        rows.append(("mean of heads", heat.mean(dim=0)))
    columns = pick_columns(len(frames), max_frames)
    fig, axes = plt.subplots(len(rows), len(columns), figsize=(1.3 * len(columns) + 0.8, 1.35 * len(rows) + 0.5),
                             squeeze=False, dpi=80)
    for r, (name, h) in enumerate(rows):
        pictures = frames if h is None else overlay(frames, h.numpy())
        for c, t in enumerate(columns):
            ax = axes[r, c]
            ax.imshow(pictures[t])
            ax.set_xticks([])
            ax.set_yticks([])
            if r == 0:
                ax.set_title(f"f{indices[t]}", fontsize=7)
            if c == 0:
                ax.set_ylabel(name, fontsize=8)
    fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    png.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(png)
    plt.close(fig)
    written = [png]
    if gif is not None:
        big = resize_frames(frames, (96, 96)) if frames.shape[1] < 96 else frames
        size = big.shape[1:3]
        layers = [("frame", big)] + [(name, overlay(big, torch.nn.functional.interpolate(
            h[None], size=size, mode="bilinear", align_corners=False)[0].numpy())) for name, h in rows[1:]]
        images = [mosaic([[label_image(pics[t], f"{name} f{indices[t]}") for name, pics in layers]])
                  for t in range(len(frames))]
        written.append(save_gif(images, gif, fps=4))
    return written


# ----------------------------------------------------------------------------------------------- inputs


def resolve_encoder(spec: str) -> tuple[str, Path | None]:
    """An encoder spec (``encoder.pt``, a run directory, ``random:<backbone>``) -> (spec for
    ``load_eval_encoder``, the run's ``config.yaml`` when there is one)."""
    path = Path(spec)
    if path.is_dir():
        if not (path / "encoder.pt").is_file():
            raise UserError(f"encoder: {path} is a folder without encoder.pt")
        path = path / "encoder.pt"
    if path.suffix == ".pt" and (path.parent / "config.yaml").is_file():
        return str(path), path.parent / "config.yaml"
    return str(path) if path.exists() else spec, None


def clip_geometry(config: Path | None, frames: int | None, stride: int | None, size: int | None) -> tuple[int, int, int]:
    """(frames, stride, crop): the command line first, then the run's ``config.yaml``, then 8, 2, 112."""
    from_run: dict[str, int] = {}
    if config is not None:
        data = OmegaConf.load(config).get("data", {})
        from_run = {"frames": data.get("num_frames"), "stride": data.get("frame_stride"), "size": data.get("crop_size")}
    pick = lambda given, key, default: int(given if given is not None else (from_run.get(key) or default))  # noqa: E731
    return pick(frames, "frames", 8), pick(stride, "stride", 2), pick(size, "size", 112)


def load_clip(video: str, frames: int, stride: int, size: int, decoder: str = "pyav") -> tuple[torch.Tensor, Any, tuple]:
    """The centre clip of ``video``: ``(1, C, T, size, size)`` normalised as evaluation does, the
    normalisation to undo, and its frame indices."""
    if not Path(video).is_file():
        raise UserError(f"video: file not found: {video}")
    spec = multi_view_spec(1, 1, frames, stride, size)
    recorder = RecordingSampler(spec.sampler)
    dataset = VideoDataset(DatasetIndex([VideoEntry(str(video), -1)], []), spec._replace(sampler=recorder),
                           decoder=decoder, max_retries=0)
    try:
        sample = dataset[0]
    except UserError:
        raise UserError(f"video: cannot decode {video}") from None
    indices = recorder.last[1].views[0].frame_indices
    return sample["video"][0][None], find_normalization(spec.transforms["crop0"]), indices


# ----------------------------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("encoder", metavar="ENCODER", help="encoder.pt, a run directory, or random:<backbone>")
    parser.add_argument("video", metavar="VIDEO", help="a video file (its centre clip is used)")
    parser.add_argument("--frames", type=int, default=None, help="frames in the clip (default: the run's, else 8)")
    parser.add_argument("--stride", type=int, default=None, help="frame stride (default: the run's, else 2)")
    parser.add_argument("--size", type=int, default=None, help="crop size in px (default: the run's, else 112)")
    parser.add_argument("--decoder", default="pyav", help="video decoder: decord, pyav or torchcodec (pyav)")
    parser.add_argument("--out", default="runs/viz/attention", help="output folder, or a .png path (GIF beside it)")
    parser.add_argument("--no-gif", action="store_true", help="write the PNG only")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    spec, config = resolve_encoder(args.encoder)
    frames, stride, size = clip_geometry(config, args.frames, args.stride, args.size)
    backbone, _ = load_eval_encoder(spec)
    clip, norm, indices = load_clip(args.video, frames, stride, size, args.decoder)
    result = encoder_maps(backbone, clip)
    heat = maps_on_clip(result.maps[0], tuple(clip.shape[2:]))
    what = {"cls": "last-layer CLS attention", "received": "last-layer attention received (no CLS token)",
            "activation": "class-agnostic activation map"}[result.kind]
    title = f"{what}: {Path(args.encoder).name if ':' not in args.encoder else args.encoder} on {Path(args.video).name}"
    png, gif = output_paths(args.out, "attention")
    for path in draw_attention(clip_to_frames(clip[0], norm), heat, result.kind, png, None if args.no_gif else gif,
                               title, indices):
        print(f"wrote {path}")
    return 0
