"""BraVe (Recasens, Luc, Alayrac, Wang, Strub, Tallec, Malinowski, Patraucean, Altché, Valko, Grill, van den Oord
and Zisserman, "Broaden Your Views for Self-Supervised Video Learning", ICCV 2021).

One NARROW view (a short, dense clip) and one or more BROAD views of the same video: a long clip at a lower frame
rate (optionally as frame differences, BraVe's cheap stand-in for flow) and/or the audio spectrogram of the broad
span. Each view has its own backbone (BraVe sec. 3: the narrow and broad backbones do not share weights; the
narrow one, ``self.backbone``, is the encoder evaluated downstream). For every (narrow, broad) pair there is a
projector and a predictor on each side ("pairwise" heads): the narrow view predicts the broad view's projection
and the broad view predicts the narrow one, with BraVe's regression loss (losses/brave.py: normalised squared
error, stop-gradient targets, no momentum network), summed over broad views.

Recipes: V/V (``broad_video=true``), V/A (``broad_video=false, broad_audio=true``), V/VA (both).
Heads (BraVe sec. 4, following BYOL): projector Linear-BN-ReLU-Linear to 128-d (hidden 4096), predictor the same
shape 128 -> 4096 -> 128. Published: TSM-50x2 V/VA on AudioSet, linear UCF101 93.1 / HMDB51 70.5.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from ..backbones import Backbone, create_backbone
from ..config import MethodConfig
from ..data.sampling import BraVeSampler, ClipSampler, SampledViews, VideoMeta, ViewSpec, audio_view, audio_window
from ..errors import UserError
from ..heads import ProjectionHead, mlp
from ..losses.brave import brave_pair_loss
from .base import Method, StepInfo


@dataclass
class BraVeConfig(MethodConfig):
    name: str = "brave"
    broad_frames: int = 16  # BraVe: narrow 16 frames at 25 fps; broad 64 frames at 12.5 fps (5 s)
    broad_stride: int = 4
    broad_crop_size: int = 0  # 0: data.crop_size. BraVe feeds the broad view at a lower resolution (112 vs 224)
    broad_video: bool = True  # V/V and V/VA
    broad_audio: bool = False  # V/A and V/VA
    broad_input: str = "rgb"  # rgb | frame_diff (BraVe's frame-difference broad view, a cheap flow proxy)
    broad_backbone: str = ""  # "": the same architecture as backbone.name (own weights)
    audio_backbone: str = "tiny_audio_resnet"  # BraVe: ResNet-50 on log-mel; audio_resnet18 here
    audio_rate: int = 16000
    audio_seconds: float = 2.0  # fixed length (batches collate); BraVe's audio broad view spans the broad clip
    n_mels: int = 64  # BraVe: 80 bins; 64 is the AudioSet front end of transforms/audio.py
    proj_hidden_dim: int = 512  # BraVe / BYOL: 4096
    proj_dim: int = 128  # BraVe: 128
    pred_hidden_dim: int = 512  # BraVe / BYOL: 4096
    stop_gradient: bool = True  # targets are constants (BraVe eq. 2)


class BraVeViewSampler(ClipSampler):
    """``BraVeSampler`` with an audio broad view of a FIXED ``audio_seconds`` centred on the broad clip, so audio
    views collate whatever each video's frame rate (the wrapped sampler's audio length follows the fps)."""

    def __init__(self, narrow: BraVeSampler, audio_seconds: float | None):
        self.narrow, self.audio_seconds = narrow, audio_seconds

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        sampled = self.narrow(meta, rng)
        views = [v for v in sampled.views if v.modality == "video"]
        broad = next((v for v in sampled.views if v.name == "broad_audio"), None)
        if broad is not None and self.audio_seconds:
            center = (broad.time_range[0] + broad.time_range[1]) / 2
            views.append(audio_view("broad_audio", audio_window(meta, center, self.audio_seconds)))
        return SampledViews(views, sampled.targets)


class PairHeads(nn.Module):
    """Projector and predictor of one side of one (narrow, broad) pair: ``(B, D)`` -> (projection, prediction)."""

    def __init__(self, in_dim: int, hidden_dim: int, proj_dim: int, pred_hidden_dim: int):
        super().__init__()
        self.projector = ProjectionHead(in_dim, hidden_dim, proj_dim)
        self.predictor = mlp(proj_dim, pred_hidden_dim, proj_dim)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        projection = self.projector(features)
        return projection, self.predictor(projection)


def frame_differences(clip: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B, C, T-1, H, W)`` differences of consecutive frames (one frame stays as is)."""
    return clip[:, :, 1:] - clip[:, :, :-1] if clip.shape[2] > 1 else clip


class BraVe(Method):
    Config = BraVeConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if not (h.broad_video or h.broad_audio):
            raise UserError("brave: set method.broad_video and/or method.broad_audio (at least one broad view)")
        if h.broad_input not in ("rgb", "frame_diff"):
            raise UserError(f"method.broad_input must be rgb or frame_diff, got {h.broad_input!r}")
        heads = lambda d: PairHeads(d, h.proj_hidden_dim, h.proj_dim, h.pred_hidden_dim)  # noqa: E731
        narrow_dim = self.backbone.num_features
        self.broad_backbones = nn.ModuleDict()
        self.narrow_heads, self.broad_heads = nn.ModuleDict(), nn.ModuleDict()
        if h.broad_video:
            self.broad_backbones["video"] = create_backbone(self.broad_video_name, **self.backbone_kwargs)
        if h.broad_audio:
            self.broad_backbones["audio"] = create_backbone(h.audio_backbone)
            if getattr(self.broad_backbones["audio"], "modality", None) != "audio":
                raise UserError(f"method.audio_backbone: {h.audio_backbone} is not an audio backbone")
        for key, backbone in self.broad_backbones.items():
            self.narrow_heads[key] = heads(narrow_dim)  # pairwise: the narrow side has one pair of heads per broad view
            self.broad_heads[key] = heads(backbone.num_features)

    @property
    def broad_video_name(self) -> str:
        return self.hparams.broad_backbone or self.cfg.backbone.name

    def views(self) -> ViewSpec:
        from ..transforms.audio import build_audio_transform
        from ..transforms.video import build_video_transform

        d, h = self.cfg.data, self.hparams
        sampler = BraVeSampler(narrow_frames=d.num_frames, narrow_stride=d.frame_stride, broad_frames=h.broad_frames,
                               broad_stride=h.broad_stride, broad_video=h.broad_video, broad_audio=h.broad_audio)
        transforms: dict[str, Any] = {
            "narrow": build_video_transform("ssl", d.crop_size),
            "broad": build_video_transform("ssl", h.broad_crop_size or d.crop_size),
            "audio": build_audio_transform("logmel", h.audio_rate, h.n_mels),
        }
        return ViewSpec(sampler=BraVeViewSampler(sampler, h.audio_seconds), transforms=transforms,
                        audio_rate=h.audio_rate if h.broad_audio else None)

    def broad_inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``{"video": (B, C, T_b, H, W), "audio": (B, 1, n_mels, frames)}`` for the enabled broad views."""
        out = {}
        if self.hparams.broad_video:
            clip = batch["video"][1]
            out["video"] = frame_differences(clip) if self.hparams.broad_input == "frame_diff" else clip
        if self.hparams.broad_audio:
            out["audio"] = batch["audio"][0]
        return out

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        narrow = self.backbone(batch["video"][0])  # (B, D_n)
        logs: dict[str, torch.Tensor] = {}
        loss = narrow.new_zeros(())
        for key, x in self.broad_inputs(batch).items():
            narrow_proj, narrow_pred = self.narrow_heads[key](narrow)
            broad_proj, broad_pred = self.broad_heads[key](self.broad_backbones[key](x))
            pair = brave_pair_loss(narrow_pred, narrow_proj, broad_pred, broad_proj, self.hparams.stop_gradient)
            logs[f"loss_{key}"] = pair.detach()
            loss = loss + pair
        return {"loss": loss, **logs, "embedding": narrow.detach()}

    def extra_encoders(self) -> dict[str, tuple[Backbone, str, dict[str, Any]]]:
        out: dict[str, tuple[Backbone, str, dict[str, Any]]] = {}
        if "video" in self.broad_backbones:
            kwargs = {k: v for k, v in self.backbone_kwargs.items() if k != "pretrained"}
            out["broad"] = (self.broad_backbones["video"], self.broad_video_name, kwargs)
        if "audio" in self.broad_backbones:
            out["audio"] = (self.broad_backbones["audio"], self.hparams.audio_backbone, {})
        return out

    @torch.no_grad()
    def pair_scores(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """V/A and V/VA: cosine between the narrow clip's prediction of the audio projection and that projection,
        ``(Nv, Na)`` (the cross-modal retrieval score)."""
        if "audio" not in self.broad_backbones:
            raise UserError("brave: audio-visual scores need an audio broad view (method.broad_audio=true)")
        _, pred = self.narrow_heads["audio"](self.backbone(video))
        proj, _ = self.broad_heads["audio"](self.broad_backbones["audio"](audio))
        return nn.functional.normalize(pred, dim=-1) @ nn.functional.normalize(proj, dim=-1).T
