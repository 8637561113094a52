"""BraVe (Recasens, Luc, Alayrac, Wang, Hemsley, Strub, Tallec, Malinowski, Patraucean, Altché, Valko, Grill,
van den Oord and Zisserman, "Broaden Your Views for Self-Supervised Video Learning", ICCV 2021).

One NARROW view (a short, dense clip) and one or more BROAD views of the same video: a long clip at a lower frame
rate (optionally as frame differences, our cheap stand-in for the paper's flow) and/or the audio spectrogram of the
broad span. Each view has its own backbone (the narrow one, ``self.backbone``, is the encoder evaluated
downstream). Projections ``z`` and predictions ``h(z)`` of the narrow and each broad view regress each other with
BraVe's loss (normalised squared error, stop-gradient targets, no momentum network).

Read in google-deepmind/brave at its newest commit 0ae20d9 (code last changed in b717f28 and 5633be0; the first
snapshot 1ae5f0a differs, noted per item):
- ``brave/models/brave/brave.py`` ``_build_loss_fn``: per broad view k, ``h_b_k`` regresses ``sg(z_n_k)`` and
  ``h_n_k`` regresses ``sg(z_b_k)``; the loss is the MEAN of those 2 x (broad views) terms; ``_regression_loss``
  is ``mean_b 0.5 || x/|x| - y/|y| ||^2 = 1 - cos`` (:func:`videossl.losses.brave.brave_loss`).
- Heads (``modules.py``, ``brave.py`` ``shared_project``): since 5633be0 ONE ``ProjectAndPredict`` serves every
  view (``method.shared_heads``), Projector Linear(4096)-BN-ReLU-Linear(128)-BN, Predictor
  Linear(4096)-BN-ReLU-Linear(128). 1ae5f0a had one head pair per (narrow, broad) direction, a 512-wide projector
  and a 4096-4096 predictor (the defaults below, kept so the synthetic recipes do not change).
- Views (``_brave_random_view_sampler``): since 5633be0 / b717f28 the narrow clip starts uniformly in the video and
  the broad view starts at the same frame, the video repeated (``media_sequences.extend_sequence``) when the broad
  span runs past its end (``method.narrow_at_broad_start``); 1ae5f0a put the narrow clip anywhere inside the broad.
- Broad video augmentation (``_transform_views``): since 5633be0 ``augmentations.random_convolve_video`` after the
  colour augmentation (``method.random_conv``, :func:`random_convolution`).
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import Backbone, create_backbone
from ..data.sampling import (BraVeSampler, ClipSampler, SampledViews, VideoMeta, ViewSpec, audio_view, audio_window,
                             clip_span, random_clip_start, segment_frames, video_view)
from ..errors import UserError
from ..heads import BravePairHead, PairHeads, SharedHeads
from ..losses.brave import brave_loss
from ..transforms.audio import build_audio_transform
from ..transforms.video import VIDEO_MEAN, VIDEO_STD, build_video_transform, frame_differences
from .base import Method, MethodConfig, StepInfo

TRUNCATED_NORMAL_STD = 0.87962566103423978  # std of a unit normal truncated to (-2, 2) (Keras VarianceScaling)


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
    proj_hidden_dim: int = 512  # BraVe code modules.py Projector: 512 at 1ae5f0a, 4096 since 5633be0
    proj_dim: int = 128  # BraVe code (config.py output_dims): 128
    pred_hidden_dim: int = 4096  # BraVe code modules.py Predictor: 4096
    pred_num_layers: int = 3  # BraVe code Predictor: 3 linear layers at 1ae5f0a, 2 since 5633be0
    stop_gradient: bool = True  # targets are constants (BraVe code: jax.lax.stop_gradient on z)
    shared_heads: bool = False  # one projector + predictor for every view (BraVe code since 5633be0: shared_project)
    random_conv: bool = False  # random convolution of the broad video (BraVe code since 5633be0)
    random_conv_max_kernel: int = 11  # odd kernel sizes 1..11 (augmentations.py DEFAULT_RANDOM_CONVOLVE_MAX_K)
    narrow_at_broad_start: bool = False  # broad view starts with the narrow clip (BraVe code since 5633be0)
    crop_min_scale: float = 0.2  # random resized crop area range (crop_min_scale, 1); BraVe code: min_area 0.3
    blur_p: float = 0.5  # Gaussian blur probability per clip; BraVe code blurs every view (p = 1)
    # [brightness, contrast, saturation, hue] of the colour jitter (p 0.8); []: the SimCLR strengths 0.4/0.4/0.4/0.1
    color_jitter: list[float] = field(default_factory=list)


def looped_indices(start: int, num_frames: int, stride: int, first: int, stop: int) -> tuple[int, ...]:
    """``num_frames`` indices from ``start`` every ``stride``; past the segment ``[first, stop)`` they continue
    from its first frame, as if the segment were repeated (BraVe code: ``media_sequences.extend_sequence``)."""
    offsets = start - first + stride * np.arange(num_frames)
    return tuple(int(first + i) for i in offsets % (stop - first))


def audio_from(meta: VideoMeta, start_s: float, seconds: float) -> tuple[float, float]:
    """A ``seconds`` window starting at ``start_s``, moved back to end at the end of the file when it would run
    past it (BraVe repeats the audio instead; one time range cannot wrap). A file shorter than the window gives
    ``(0, seconds)``, which the dataset pads with silence."""
    start = max(min(start_s, max(meta.duration, seconds) - seconds), 0.0)
    return float(start), float(start + seconds)


class BraVeViewSampler(ClipSampler):
    """The narrow clip and the broad views of one sample.

    Default: ``BraVeSampler`` (the narrow clip anywhere inside a random broad span, BraVe code 1ae5f0a) with an
    audio broad view of a FIXED ``audio_seconds`` centred on the broad clip, so audio views collate whatever each
    video's frame rate. ``narrow_at_broad_start`` (BraVe code since 5633be0 / b717f28,
    ``_brave_random_view_sampler``): the narrow clip starts uniformly in the segment and the broad clip and the
    audio start at the same frame; frames past the segment's end loop back to its start.
    """

    def __init__(self, sampler: BraVeSampler, audio_seconds: float | None, narrow_at_broad_start: bool = False):
        self.sampler, self.audio_seconds, self.narrow_at_broad_start = sampler, audio_seconds, narrow_at_broad_start

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        if self.narrow_at_broad_start:
            return self.aligned(meta, rng)
        sampled = self.sampler(meta, rng)
        views = [v for v in sampled.views if v.modality == "video"]
        broad = next((v for v in sampled.views if v.name == "broad_audio"), None)
        if broad is not None and self.audio_seconds:
            center = (broad.time_range[0] + broad.time_range[1]) / 2
            views.append(audio_view("broad_audio", audio_window(meta, center, self.audio_seconds)))
        return SampledViews(views, sampled.targets)

    def aligned(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        s = self.sampler
        first, stop = segment_frames(meta)
        start = random_clip_start(first, stop, clip_span(s.narrow_frames, s.narrow_stride), rng)
        views = [video_view("narrow", looped_indices(start, s.narrow_frames, s.narrow_stride, first, stop), "narrow")]
        if s.broad_video:
            views.append(video_view("broad", looped_indices(start, s.broad_frames, s.broad_stride, first, stop),
                                    "broad"))
        if s.broad_audio:
            fps = meta.fps or 1.0
            seconds = self.audio_seconds or s.broad_frames * s.broad_stride / fps  # BraVe: 64 x 4 frames / 25 fps
            views.append(audio_view("broad_audio", audio_from(meta, start / fps, seconds)))
        return SampledViews(views, {})


def random_conv_filters(batch: int, channels: int = 3, max_kernel: int = 11,
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """One random ``channels -> channels`` filter per clip: ``(B, C, C, K, K)`` with ``K = max_kernel``, and the
    kernel sizes ``(B,)``.

    BraVe code ``augmentations._random_convolve``: the kernel size k is uniform over the odd sizes 1..max_k; the
    weights are ``tf.initializers.he_normal`` (Keras HeNormal: normal truncated at 2 std, std sqrt(2 / (k k C))
    after truncation), no bias. The k x k kernel sits in the centre of a zero K x K kernel, which with zero
    padding gives the same output (one grouped convolution for the whole batch).
    """
    sizes = torch.arange(1, max_kernel + 1, 2)
    picks = sizes[torch.randint(len(sizes), (batch,), generator=generator)]
    weights = torch.zeros(batch, channels, channels, max_kernel, max_kernel)
    for i, k in enumerate(picks.tolist()):
        std = math.sqrt(2.0 / (k * k * channels)) / TRUNCATED_NORMAL_STD
        kernel = torch.nn.init.trunc_normal_(torch.empty(channels, channels, k, k), std=std, a=-2 * std, b=2 * std,
                                             generator=generator)
        offset = (max_kernel - k) // 2
        weights[i, :, :, offset:offset + k, offset:offset + k] = kernel
    return weights, picks


@torch.no_grad()
def random_convolution(clip: torch.Tensor, max_kernel: int = 11, mean: tuple[float, ...] = VIDEO_MEAN,
                       std: tuple[float, ...] = VIDEO_STD, generator: torch.Generator | None = None) -> torch.Tensor:
    """``(B, C, T, H, W)`` normalised clips -> the same shape, each clip convolved with its own random filter
    (:func:`random_conv_filters`), the SAME filter on every frame of a clip, zero 'same' padding, stride 1.

    BraVe code (``_transform_views``) convolves the broad video in [0, 1] pixel units after the colour
    augmentation, on every sample (no probability), and feeds the result to the network as it is. Our clips
    arrive normalised ((x - mean) / std), so they are mapped back to pixels, convolved and normalised again.
    """
    b, c, t, h, w = clip.shape
    weights, _ = random_conv_filters(b, c, max_kernel, generator)
    weights = weights.to(device=clip.device, dtype=clip.dtype).reshape(b * c, c, max_kernel, max_kernel)
    m = clip.new_tensor(mean).view(1, c, 1, 1, 1)
    s = clip.new_tensor(std).view(1, c, 1, 1, 1)
    frames = (clip * s + m).permute(2, 0, 1, 3, 4).reshape(t, b * c, h, w)  # frames as the batch, clips as groups
    out = F.conv2d(frames, weights, padding=max_kernel // 2, groups=b)
    return ((out.reshape(t, b, c, h, w).permute(1, 2, 0, 3, 4) - m) / s).contiguous()


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
        if h.random_conv_max_kernel < 1 or h.random_conv_max_kernel % 2 == 0:
            raise UserError(f"method.random_conv_max_kernel must be odd and >= 1, got {h.random_conv_max_kernel}")
        if not 0.0 < h.crop_min_scale <= 1.0 or not 0.0 <= h.blur_p <= 1.0:
            raise UserError(f"method.crop_min_scale must be in (0, 1] and method.blur_p in [0, 1], got "
                            f"{h.crop_min_scale} and {h.blur_p}")

        narrow_dim = self.backbone.num_features
        self.broad_backbones = nn.ModuleDict()
        if h.broad_video:
            self.broad_backbones["video"] = create_backbone(self.broad_video_name, **self.backbone_kwargs)
        if h.broad_audio:
            self.broad_backbones["audio"] = create_backbone(h.audio_backbone)
            if getattr(self.broad_backbones["audio"], "modality", None) != "audio":
                raise UserError(f"method.audio_backbone: {h.audio_backbone} is not an audio backbone")
        if h.shared_heads:
            dims = [narrow_dim, *(b.num_features for b in self.broad_backbones.values())]
            self.heads = SharedHeads(dims, h.proj_hidden_dim, h.proj_dim, h.pred_hidden_dim, h.pred_num_layers)
        else:  # pairwise: the narrow side has one pair of heads per broad view (BraVe code 1ae5f0a)
            self.narrow_heads, self.broad_heads = nn.ModuleDict(), nn.ModuleDict()
            for key, backbone in self.broad_backbones.items():
                self.narrow_heads[key] = PairHeads(narrow_dim, h.proj_hidden_dim, h.proj_dim, h.pred_hidden_dim,
                                                   h.pred_num_layers)
                self.broad_heads[key] = PairHeads(backbone.num_features, h.proj_hidden_dim, h.proj_dim,
                                                  h.pred_hidden_dim, h.pred_num_layers)

    @property
    def broad_video_name(self) -> str:
        return self.hparams.broad_backbone or self.cfg.backbone.name

    def project(self, side: str, key: str, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(projection, prediction) of ``side`` ("narrow" / "broad") in the pair with broad view ``key``."""
        if self.hparams.shared_heads:
            return self.heads(features)
        return (self.narrow_heads if side == "narrow" else self.broad_heads)[key](features)

    def views(self) -> ViewSpec:
        d, h = self.cfg.data, self.hparams
        sampler = BraVeSampler(narrow_frames=d.num_frames, narrow_stride=d.frame_stride, broad_frames=h.broad_frames,
                               broad_stride=h.broad_stride, broad_video=h.broad_video, broad_audio=h.broad_audio)
        crop = {"scale": (float(h.crop_min_scale), 1.0), "blur_p": float(h.blur_p),
                "jitter": tuple(float(j) for j in h.color_jitter) or None}
        transforms: dict[str, Any] = {
            "narrow": build_video_transform("ssl", d.crop_size, **crop),
            "broad": build_video_transform("ssl", h.broad_crop_size or d.crop_size, **crop),
            "audio": build_audio_transform("logmel", h.audio_rate, h.n_mels),
        }
        return ViewSpec(sampler=BraVeViewSampler(sampler, h.audio_seconds, bool(h.narrow_at_broad_start)),
                        transforms=transforms, audio_rate=h.audio_rate if h.broad_audio else None)

    def broad_inputs(self, batch: dict[str, Any]) -> dict[str, torch.Tensor]:
        """``{"video": (B, C, T_b, H, W), "audio": (B, 1, n_mels, frames)}`` for the enabled broad views."""
        out = {}
        if self.hparams.broad_video:
            clip = batch["video"][1]
            if self.hparams.random_conv and self.training:
                clip = random_convolution(clip, int(self.hparams.random_conv_max_kernel))
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
            narrow_proj, narrow_pred = self.project("narrow", key, narrow)
            broad_proj, broad_pred = self.project("broad", key, self.broad_backbones[key](x))
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
            out["av_head"] = self.audio_pair_head()
        return out

    def audio_pair_head(self) -> tuple[BravePairHead, str, dict[str, Any]]:
        """The heads ``pair_scores`` uses, sharing this method's modules, saved as ``encoder_av_head.pt`` (read by
        ``videossl eval av-retrieval`` / ``av-sync`` without the method class)."""
        h = self.hparams
        kwargs = {"narrow_dim": self.backbone.num_features, "audio_dim": self.broad_backbones["audio"].num_features,
                  "hidden_dim": int(h.proj_hidden_dim), "proj_dim": int(h.proj_dim),
                  "pred_hidden_dim": int(h.pred_hidden_dim), "pred_num_layers": int(h.pred_num_layers),
                  "shared_dims": [int(d) for d in self.heads.inputs] if h.shared_heads else [],
                  "audio": {"audio_rate": int(h.audio_rate), "audio_seconds": float(h.audio_seconds), "n_mels": int(h.n_mels)}}
        with torch.random.fork_rng(devices=[]):  # the throwaway init of the replaced layers draws no training RNG
            head = BravePairHead(**kwargs)
        if h.shared_heads:
            head.heads = self.heads
        else:
            head.narrow, head.broad = self.narrow_heads["audio"], self.broad_heads["audio"]
        return head, "brave_audio", kwargs

    @torch.no_grad()
    def pair_scores(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """V/A and V/VA: cosine between the narrow clip's prediction of the audio projection and that projection,
        ``(Nv, Na)`` (the cross-modal retrieval score)."""
        if "audio" not in self.broad_backbones:
            raise UserError("brave: audio-visual scores need an audio broad view (method.broad_audio=true)")
        _, pred = self.project("narrow", "audio", self.backbone(video))
        proj, _ = self.project("broad", "audio", self.broad_backbones["audio"](audio))
        return nn.functional.normalize(pred, dim=-1) @ nn.functional.normalize(proj, dim=-1).T
