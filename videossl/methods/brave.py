"""BraVe (Recasens, Luc, Alayrac, Wang, Strub, Tallec, Malinowski, Patraucean, Altché, Valko, Grill, van den Oord
and Zisserman, "Broaden Your Views for Self-Supervised Video Learning", ICCV 2021).

One NARROW view (a short, dense clip) and one or more BROAD views of the same video: a long clip at a lower frame
rate (optionally as frame differences, our cheap stand-in for the paper's flow) and/or the audio spectrogram of the
broad span. Each view has its own backbone (BraVe sec. 3: the narrow and broad backbones do not share weights; the
narrow one, ``self.backbone``, is the encoder evaluated downstream). For every (narrow, broad) pair there is a
projector and a predictor on each side ("pairwise" heads): the narrow view predicts the broad view's projection
and the broad view predicts the narrow one, with BraVe's regression loss (normalised squared error, stop-gradient
targets, no momentum network).

Checked against the released code, google-deepmind/brave (commit 1ae5f0a):
- ``brave/models/brave/brave.py`` ``_build_loss_fn``: per broad view k, ``h_b_k`` regresses ``sg(z_n_k)`` and
  ``h_n_k`` regresses ``sg(z_b_k)``, where the narrow side's (z, h) come from its own pair head
  (``n_video_to_b_video`` / ``n_video_to_b_audio``); the total is the MEAN of those 2 x (number of broad views)
  terms; ``_regression_loss`` is ``mean_b 0.5 || x/|x| - y/|y| ||^2 = 1 - cos`` (:func:`brave_loss` here).
- ``brave/models/brave/modules.py``: ``Projector`` Linear(512)-BN-ReLU-Linear(128)-BN and ``Predictor``
  Linear(4096)-BN-ReLU-Linear(4096)-BN-ReLU-Linear(128) (BN with scale and offset), ``output_dims`` 128 in
  ``brave/config.py``.
- ``brave/config.py``: narrow 16 frames, step 2, 224 px; broad 64 frames, step 4, 112 px, on 25 fps video; audio
  80 log-mel bins over the broad span (64 x 4 frames = 10.24 s); AdamW (``optimizers.py``: optax.adamw) with
  weight decay 1e-2, warm-up cosine to a peak lr 2e-3 (5k warm-up of 300k steps), global batch 512.

Recipes: V/V (``broad_video=true``), V/A (``broad_video=false, broad_audio=true``), V/VA (both). The frame-difference
broad input is ours (the paper's broad alternatives are flow and randomly convolved frames; the released code has
neither). Published (BraVe tab. 6 / Papers with Code): V/FA (broad flow + audio), TSM-50x2, AudioSet: linear
UCF101 93.1 / HMDB51 70.5; the released checkpoints' README table: V/A TSM-50 93.0 / 69.4.
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
from ..heads import mlp
from ..losses.brave import brave_regression_loss
from .base import Method, StepInfo


@dataclass
class BraVeConfig(MethodConfig):
    name: str = "brave"
    broad_frames: int = 16  # BraVe code (config.py): narrow 16 frames step 2, broad 64 frames step 4 (25 fps video)
    broad_stride: int = 4
    broad_crop_size: int = 0  # 0: data.crop_size. BraVe feeds the broad view at a lower resolution (112 vs 224)
    broad_video: bool = True  # V/V and V/VA
    broad_audio: bool = False  # V/A and V/VA
    broad_input: str = "rgb"  # rgb | frame_diff (ours: a cheap stand-in for the paper's flow broad view)
    broad_backbone: str = ""  # "": the same architecture as backbone.name (own weights)
    audio_backbone: str = "tiny_audio_resnet"  # BraVe: ResNet-50 on log-mel; audio_resnet18 here
    audio_rate: int = 16000
    audio_seconds: float = 2.0  # fixed length (batches collate); BraVe's audio broad view spans the broad clip
    n_mels: int = 64  # BraVe: 80 bins; 64 is the AudioSet front end of transforms/audio.py
    proj_hidden_dim: int = 512  # BraVe code (modules.py Projector): 512
    proj_dim: int = 128  # BraVe code (config.py output_dims): 128
    pred_hidden_dim: int = 4096  # BraVe code (modules.py Predictor): 4096, two hidden layers
    pred_num_layers: int = 3  # BraVe code: Linear-BN-ReLU-Linear-BN-ReLU-Linear
    stop_gradient: bool = True  # targets are constants (BraVe code: jax.lax.stop_gradient on z)


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


def brave_projector(in_dim: int, hidden_dim: int = 512, out_dim: int = 128) -> nn.Sequential:
    """``(B, in_dim)`` -> ``(B, out_dim)``: Linear-BN-ReLU-Linear-BN, BN with scale and offset on the output too
    (BraVe code, modules.py ``Projector``)."""
    return nn.Sequential(nn.Linear(in_dim, hidden_dim, bias=False), nn.BatchNorm1d(hidden_dim), nn.ReLU(inplace=True),
                         nn.Linear(hidden_dim, out_dim, bias=False), nn.BatchNorm1d(out_dim))


def brave_predictor(dim: int = 128, hidden_dim: int = 4096, num_layers: int = 3) -> nn.Sequential:
    """``(B, dim)`` -> ``(B, dim)``: ``num_layers`` linear layers with BN + ReLU between them and a plain linear
    output (BraVe code, modules.py ``Predictor``: 128 -> 4096 -> 4096 -> 128)."""
    return mlp(dim, hidden_dim, dim, num_layers=num_layers)


def brave_loss(prediction: torch.Tensor, target: torch.Tensor, stop_gradient: bool = True) -> torch.Tensor:
    """BraVe code's ``_regression_loss``: ``mean_b 0.5 || p/|p| - z/|z| ||^2 = 1 - cos(p, z)``; ``(B, D)`` each.
    Half of :func:`videossl.losses.brave.brave_regression_loss` (``2 - 2 cos``)."""
    return 0.5 * brave_regression_loss(prediction, target, stop_gradient)


class PairHeads(nn.Module):
    """Projector and predictor of one side of one (narrow, broad) pair: ``(B, D)`` -> (projection, prediction)."""

    def __init__(self, in_dim: int, hidden_dim: int, proj_dim: int, pred_hidden_dim: int, pred_num_layers: int = 3):
        super().__init__()
        self.projector = brave_projector(in_dim, hidden_dim, proj_dim)
        self.predictor = brave_predictor(proj_dim, pred_hidden_dim, pred_num_layers)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        projection = self.projector(features)
        return projection, self.predictor(projection)


def frame_differences(clip: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` -> ``(B, C, T-1, H, W)`` differences of consecutive frames (one frame stays as is)."""
    return clip[:, :, 1:] - clip[:, :, :-1] if clip.shape[2] > 1 else clip


class BraVe(Method):
    Config = BraVeConfig
    smoke_overrides = ("method.pred_hidden_dim=64", "method.proj_hidden_dim=64")

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if not (h.broad_video or h.broad_audio):
            raise UserError("brave: set method.broad_video and/or method.broad_audio (at least one broad view)")
        if h.broad_input not in ("rgb", "frame_diff"):
            raise UserError(f"method.broad_input must be rgb or frame_diff, got {h.broad_input!r}")
        if h.pred_num_layers < 1:
            raise UserError(f"method.pred_num_layers must be at least 1, got {h.pred_num_layers}")
        def heads(in_dim: int) -> PairHeads:
            return PairHeads(in_dim, h.proj_hidden_dim, h.proj_dim, h.pred_hidden_dim, h.pred_num_layers)

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
        sg = self.hparams.stop_gradient
        logs: dict[str, torch.Tensor] = {}
        terms: list[torch.Tensor] = []
        for key, x in self.broad_inputs(batch).items():
            narrow_proj, narrow_pred = self.narrow_heads[key](narrow)
            broad_proj, broad_pred = self.broad_heads[key](self.broad_backbones[key](x))
            b_to_n = brave_loss(broad_pred, narrow_proj, sg)  # BraVe code: loss_b_to_n_k
            n_to_b = brave_loss(narrow_pred, broad_proj, sg)  # BraVe code: loss_n_to_b_k
            logs[f"loss_{key}"] = (b_to_n + n_to_b).detach() / 2
            terms += [b_to_n, n_to_b]
        loss = torch.stack(terms).mean()  # BraVe code: jnp.stack(losses).mean()
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
