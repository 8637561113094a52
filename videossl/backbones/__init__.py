"""Backbone zoo: ``BACKBONES`` (an explicit dict) and ``create_backbone(name, **kw)``.

Every entry follows the contract in ``base.py``. ``encoder.pt`` files (backbone weights only) are written
and read by ``save_encoder`` / ``load_encoder`` and need nothing from the method classes.
``describe_backbones()`` lists every entry with its parameter count, expected input and a description
(``videossl list backbones``).
"""
from __future__ import annotations

import difflib
import functools
from pathlib import Path
from typing import Any, Callable

import torch

from ..errors import UserError
from ..files import torch_save
from ..loading import ENCODER_KEYS, describe_payload, file_kind, read_torch_file, sibling_hint
from . import audio, dpc_resnet, framewise, pytorchvideo_video, torchvision_video, video_vit
from .base import Backbone
from .dpc_aggregate import DPCAggregate
from .residual import INPUT_TRANSFORMS
from .tiny import TinyResNet3d

BACKBONES: dict[str, Callable[..., Backbone]] = {
    # tiny variants: CPU tests, quickstart, smoke training
    "tiny_r3d": TinyResNet3d,
    "tiny_r2d": framewise.tiny_r2d,
    "tiny_vit2d": framewise.tiny_vit2d,
    "tiny_videomae": video_vit.tiny_videomae,
    "tiny_timesformer": video_vit.tiny_timesformer,
    "tiny_vivit": video_vit.tiny_vivit,
    "tiny_audio_resnet": audio.tiny_audio_resnet,
    "tiny_cpc_encoder": audio.tiny_cpc_encoder,
    # 3D CNNs, torchvision
    "r3d_18": torchvision_video.r3d_18,
    "mc3_18": torchvision_video.mc3_18,
    "r2plus1d_18": torchvision_video.r2plus1d_18,
    "s3d": torchvision_video.TorchvisionS3D,
    "mvit_v2_s": torchvision_video.TorchvisionMViT,
    "swin3d_t": torchvision_video.TorchvisionSwin3d,
    # 3D CNNs, pytorchvideo
    "slow_r50": pytorchvideo_video.slow_r50,
    "x3d_xs": pytorchvideo_video.x3d_xs,
    "x3d_s": pytorchvideo_video.x3d_s,
    "x3d_m": pytorchvideo_video.x3d_m,
    "slowfast_r50": pytorchvideo_video.PytorchvideoSlowFast,
    "csn_r101": pytorchvideo_video.csn_r101,
    "r2plus1d_r50": pytorchvideo_video.r2plus1d_r50,
    # DPC
    "r2d3d_18": dpc_resnet.r2d3d_18,
    "r2d3d_34": dpc_resnet.r2d3d_34,
    "dpc_aggregate": lambda **kw: build_dpc_aggregate(**kw),  # 2D3D-ResNet + ConvGRU context: DPC / MemDPC fine-tuning (encoder_dpc.pt)
    # video transformers (transformers configs)
    "videomae_vit_s16": video_vit.videomae_vit_s16,
    "videomae_vit_b16": video_vit.videomae_vit_b16,
    "videomae_vit_l16": video_vit.videomae_vit_l16,
    "timesformer_b16": video_vit.timesformer_b16,
    "vivit_b16x2": video_vit.vivit_b16x2,
    # 2D networks, frame-wise
    "resnet18": framewise.resnet18,
    "resnet34": framewise.resnet34,
    "resnet50": framewise.resnet50,
    "vit_s16": framewise.vit_s16,
    "vit_b16": framewise.vit_b16,
    # audio
    "audio_resnet18": audio.audio_resnet18,
    "cpc_encoder": audio.cpc_encoder,
}

_CLIP = "video (B, C, T, H, W)"
ENCODER_FORMAT = "videossl-encoder-v1"  # ``payload["format"]`` of an encoder.pt (checkpoints: videossl-checkpoint-v1)
# name -> (expected input, description); kept next to BACKBONES so a new entry is one line in each.
BACKBONE_CARDS: dict[str, tuple[str, str]] = {
    "tiny_r3d": (f"{_CLIP}, C=3, T 4-8, 32-64 px", "tiny 3D ResNet (1 block/stage) for CPU tests"),
    "tiny_r2d": (f"{_CLIP}, C=3, any T, 32-64 px", "ResNet-18 at 1/4 width, frame-wise"),
    "tiny_vit2d": (f"{_CLIP}, C=3, any T, H,W multiple of 8", "2-layer 64-d ViT, frame-wise"),
    "tiny_videomae": (f"{_CLIP}, C=3, T even, H,W multiple of 8 (built 8x32x32)", "2-layer 64-d VideoMAE ViT"),
    "tiny_timesformer": (f"{_CLIP}, C=3, any T, H,W multiple of 8 (built 4x32x32)", "2-layer 64-d TimeSformer"),
    "tiny_vivit": (f"{_CLIP}, C=3, T even, H,W multiple of 8 (built 8x32x32)", "2-layer 64-d ViViT"),
    "tiny_audio_resnet": ("audio log-mel (B, 1, n_mels, frames)", "ResNet-18 at 1/4 width on spectrograms"),
    "tiny_cpc_encoder": ("audio waveform (B, 1, samples), samples multiple of 160", "CPC encoder, 64 ch"),
    "r3d_18": (f"{_CLIP}, C=3, T 8-16, 112 px", "torchvision R3D-18 (Tran et al. 2018)"),
    "mc3_18": (f"{_CLIP}, C=3, T 8-16, 112 px", "torchvision MC3-18, mixed 3D/2D convolutions"),
    "r2plus1d_18": (f"{_CLIP}, C=3, T 8-16, 112 px", "torchvision R(2+1)D-18"),
    "s3d": (f"{_CLIP}, C=3, T 16-64, 224 px", "torchvision S3D (Xie et al. 2018)"),
    "mvit_v2_s": (f"{_CLIP}, C=3, exactly 16x224x224", "torchvision MViTv2-S (CLS features)"),
    "swin3d_t": (f"{_CLIP}, C=3, T 16-32, 224 px", "torchvision Video Swin-T"),
    "slow_r50": (f"{_CLIP}, C=3, T 8, 224 px", "pytorchvideo Slow-R50 (SlowFast paper's slow pathway)"),
    "x3d_xs": (f"{_CLIP}, C=3, T 4, 160 px", "pytorchvideo X3D-XS (432-d pre-pool expansion)"),
    "x3d_s": (f"{_CLIP}, C=3, T 13, 160 px", "pytorchvideo X3D-S"),
    "x3d_m": (f"{_CLIP}, C=3, T 16, 224 px", "pytorchvideo X3D-M"),
    "slowfast_r50": (f"{_CLIP}, C=3, T 32 (multiple of 4), 224 px", "pytorchvideo SlowFast-R50 4x, slow+fast concat"),
    "csn_r101": (f"{_CLIP}, C=3, T 32, 224 px", "pytorchvideo ir-CSN-101"),
    "r2plus1d_r50": (f"{_CLIP}, C=3, T 16, 224 px", "pytorchvideo R(2+1)D-50"),
    "r2d3d_18": (f"{_CLIP}, C=3, T 5 per block, 128 px", "DPC 2D3D-ResNet-18 (Han et al. 2019)"),
    "r2d3d_34": (f"{_CLIP}, C=3, T 5 per block, 128 px", "DPC 2D3D-ResNet-34"),
    "dpc_aggregate": (f"{_CLIP}, C=3, T = num_blocks x block_frames (8 x 5)", "DPC backbone + ConvGRU context"),
    "videomae_vit_s16": (f"{_CLIP}, C=3, T even (built 16), 224 px", "VideoMAE ViT-S/16, tubelet 2"),
    "videomae_vit_b16": (f"{_CLIP}, C=3, T even (built 16), 224 px", "VideoMAE ViT-B/16, tubelet 2"),
    "videomae_vit_l16": (f"{_CLIP}, C=3, T even (built 16), 224 px", "VideoMAE ViT-L/16, tubelet 2 (V-JEPA's ViT-L)"),
    "timesformer_b16": (f"{_CLIP}, C=3, any T (built 8), 224 px", "TimeSformer-B, divided space-time attention"),
    "vivit_b16x2": (f"{_CLIP}, C=3, T even (built 32), 224 px", "ViViT-B/16x2, joint attention"),
    "resnet18": (f"{_CLIP} (T=1: image), C=3, 224 px", "torchvision ResNet-18, frame-wise"),
    "resnet34": (f"{_CLIP} (T=1: image), C=3, 224 px", "torchvision ResNet-34, frame-wise"),
    "resnet50": (f"{_CLIP} (T=1: image), C=3, 224 px", "torchvision ResNet-50, frame-wise"),
    "vit_s16": (f"{_CLIP} (T=1: image), C=3, 224 px", "ViT-S/16 (transformers), frame-wise, CLS"),
    "vit_b16": (f"{_CLIP} (T=1: image), C=3, 224 px", "ViT-B/16 (transformers), frame-wise, CLS"),
    "audio_resnet18": ("audio log-mel (B, 1, n_mels, frames)", "ResNet-18 audio tower of audio-visual SSL"),
    "cpc_encoder": ("audio waveform (B, 1, samples) at 16 kHz", "CPC: 5 strided convs (x160, 512 ch) + GRU-256"),
}


def create_backbone(name: str, channels_last: bool = False, compile: bool = False, input_transform: str = "rgb",
                    **kwargs: Any) -> Backbone:
    """Build a backbone by its ``BACKBONES`` name; an unknown name names the closest valid one.

    ``kwargs`` go to the constructor (``in_channels``, ``pretrained=/local/path`` ...); ``channels_last``
    and ``compile`` are the run-time options of ``Backbone.set_runtime_options``; ``input_transform="residual"``
    feeds the network residual frames (``residual.py``).
    """
    if input_transform not in INPUT_TRANSFORMS:
        raise UserError(f"backbone input_transform '{input_transform}' is not one of {', '.join(INPUT_TRANSFORMS)}")
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, list(BACKBONES), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (choose from: {', '.join(BACKBONES)})"
        raise KeyError(f"unknown backbone '{name}'{hint}")
    backbone = BACKBONES[name](**kwargs)
    if channels_last or compile:
        backbone.set_runtime_options(channels_last=channels_last, compile=compile)
    wrapper = INPUT_TRANSFORMS[input_transform]
    return wrapper(backbone) if wrapper is not None else backbone


def count_parameters(name: str, **kwargs: Any) -> int:
    """Parameters of ``BACKBONES[name]`` built on the ``meta`` device (no memory, no weight init).

    Default builds are cached (VideoMAE's constructor computes its sinusoid table in Python: seconds).
    """
    kwargs.pop("pretrained", None)
    kwargs.pop("input_transform", None)  # a parameter-free wrapper
    if not kwargs:
        return _count_default_parameters(name)
    with torch.device("meta"):
        backbone = BACKBONES[name](**kwargs)
    return sum(p.numel() for p in backbone.parameters())


@functools.lru_cache(maxsize=None)
def _count_default_parameters(name: str) -> int:
    with torch.device("meta"):
        backbone = BACKBONES[name]()
    return sum(p.numel() for p in backbone.parameters())


def describe_backbones() -> list[dict[str, Any]]:
    """``[{"name", "params", "input", "description"}]`` for every ``BACKBONES`` entry, in registry order."""
    rows = []
    for name in BACKBONES:
        expected, description = BACKBONE_CARDS.get(name, ("", ""))
        rows.append({"name": name, "params": count_parameters(name), "input": expected, "description": description})
    return rows


def build_dpc_aggregate(backbone: str = "r2d3d_18", backbone_kwargs: dict[str, Any] | None = None,
                        **kwargs: Any) -> DPCAggregate:
    """``DPCAggregate`` around the registry backbone ``backbone`` (built here, so ``dpc_aggregate.py`` does not import
    the registry that imports it)."""
    if kwargs.get("encoder") is None:
        kwargs["encoder"] = create_backbone(backbone, **dict(backbone_kwargs or {}))
    return DPCAggregate(backbone, backbone_kwargs, **kwargs)


def save_encoder(path: str | Path, backbone: Backbone, name: str, kwargs: dict[str, Any],
                 clip: dict[str, Any] | None = None) -> None:
    """Write ``{"backbone": name, "kwargs": kwargs, "num_features": D, "clip": clip, "state_dict": ...}``.

    ``clip``: the geometry and normalisation the encoder was trained with (``num_frames``, ``frame_stride``,
    ``crop_size``, ``mean``, ``std``), which evaluation uses unless told otherwise (``encoder_clip``).
    Plain tensors and builtins only, so it loads with ``torch.load(..., weights_only=True)``. ``format`` says what
    the file is (``ENCODER_FORMAT``), so a checkpoint given as an encoder, or the reverse, is named as such.
    """
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in backbone.state_dict().items()}
    payload = {"format": ENCODER_FORMAT, "backbone": name, "kwargs": dict(kwargs),
               "num_features": backbone.num_features, "clip": dict(clip or {}), "state_dict": state}
    torch_save(payload, path)  # atomic, unique temp name; a full disk is one line (videossl.files)


def encoder_clip(path: str | Path) -> dict[str, Any]:
    """The ``clip`` record of an ``encoder.pt`` (``{}`` for files written before it existed or unreadable ones;
    ``load_encoder`` reports those)."""
    try:
        payload = read_torch_file(path, "encoder file", mmap=True, verify=False)
    except Exception:  # load_encoder gives the user-facing error
        return {}
    clip = payload.get("clip") if isinstance(payload, dict) else None
    return dict(clip) if isinstance(clip, dict) else {}


def load_encoder(path: str | Path, map_location: str = "cpu") -> Backbone:
    """Rebuild the backbone saved by ``save_encoder`` (``weights_only=True``).

    The ``pretrained`` path it was first built from is not read again: the saved weights replace it. A file that
    is not a videossl encoder (missing, empty, truncated, text, another format, a pickle that would run code, a
    torch file without videossl's keys, a training checkpoint ``last.ckpt``) is a ``UserError`` on one line saying
    what the file is (``videossl.loading``).
    """
    path = Path(path)
    payload = read_torch_file(path, "encoder file", map_location=map_location)
    kind = file_kind(payload)
    if kind == "checkpoint":
        raise UserError(f"{path}: this is a videossl checkpoint, not an encoder file; pass encoder.pt"
                        f"{sibling_hint(path, 'encoder.pt')}")
    if kind != "encoder" or not ENCODER_KEYS <= set(payload):
        raise UserError(f"{path}: not an encoder file written by videossl (it is a torch file holding "
                        f"{describe_payload(payload)}; an encoder.pt has the keys backbone, kwargs, state_dict)")
    name, kwargs = payload["backbone"], payload["kwargs"]
    if not isinstance(name, str) or not isinstance(kwargs, dict) or not isinstance(payload["state_dict"], dict):
        raise UserError(f"{path}: a damaged encoder file (backbone, kwargs or state_dict has the wrong type)")
    if name not in BACKBONES:
        raise UserError(f"{path}: the encoder's backbone {name!r} is not known to this videossl version "
                        f"(`videossl list backbones` lists them)")
    kwargs = {k: v for k, v in kwargs.items() if k != "pretrained"}
    try:
        backbone = create_backbone(name, **kwargs)
    except (TypeError, ValueError, KeyError) as e:
        raise UserError(f"{path}: cannot rebuild backbone {name!r} from the saved settings {sorted(kwargs)}: "
                        f"{' '.join(str(e).split()) or type(e).__name__}") from None
    try:
        backbone.load_state_dict(payload["state_dict"])
    except RuntimeError as e:
        first = " ".join(str(e).split(". ")[0].split())
        raise UserError(f"{path}: the saved weights do not fit backbone {name!r} ({first})") from None
    return backbone
