"""ELo: Evolving Losses (Piergiovanni, Angelova and Ryoo, "Evolving Losses for Unsupervised Video Representation
Learning", CVPR 2020).

One RGB network (``self.backbone``, the encoder evaluated downstream) is trained with a weighted bank of
self-supervised tasks; the weights are what ``videossl search elo`` evolves (``videossl/search/``).

Streams (ELo sec. 3: RGB, optical flow, grayscale, audio, each with its own network):
  - ``frame_diff``: differences of consecutive RGB frames, the cheap stand-in for optical flow (TV-L1 / RAFT flow is
    too costly to compute on a CPU, and is not precomputed for our datasets); a 3-channel video network;
  - ``gray``: the luma of the clip (ITU-R BT.601 weights), a 1-channel video network;
  - ``audio``: log-mel of the audio around the clip, a 2D audio network (as in AVID / BraVe).
Grayscale and frame differences are derived from the (augmented, normalised) RGB clip inside the method, batched,
so the data pipeline only samples a clip and its audio (``AudioVisualSampler``).

The task bank, each term weighted by ``method.weights.<task>`` (a weight of 0 skips its computation):
  - ``reconstruction``: a small 3D decoder on the RGB network's last feature map predicts a downsampled target
    (``recon_target``: frame differences by default, i.e. cross-modal "RGB -> flow" prediction, or grayscale / RGB),
    mean squared error (ELo's reconstruction and cross-modal prediction tasks);
  - ``future``: the feature of the next clip (the ``T`` frames right after the clip) is predicted from the clip's
    feature and scored contrastively against the other videos' next clips (DPC-like InfoNCE, Han et al. 2019);
  - ``ordering``: forward vs time-reversed clip, a binary classifier on the RGB feature (arrow of time, Wei et al.
    2018; ELo uses temporal ordering tasks of this kind);
  - ``contrastive``: symmetric InfoNCE between the RGB clip and each other stream of the same video (CMC-style
    multi-modal alignment; for audio the AVID loss), averaged over streams;
  - ``distillation``: at each depth of ``distill_taps`` (``feature_taps`` of the backbone contract, e.g.
    stage2..stage4), the pooled RGB feature goes through a per-(stream, depth) linear projection and regresses the
    pooled, L2-normalised feature of the other stream at the same depth (L2 between unit vectors = 2 - 2 cos;
    ELo's multi-modal distillation, eq. 1), averaged over streams and depths.

Training of the other streams: in ELo the modality networks are trained with the unsupervised losses and then
distilled into RGB. Here they are trained jointly, from the same batches, through the contrastive alignment term
(gradients reach both sides); the distillation targets are detached (stop-gradient), so distillation only moves the
RGB network. The streams have no reconstruction / future / ordering heads of their own (CPU budget).
"""
from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..backbones import Backbone, create_backbone
from ..data.sampling import AudioVisualSampler, RandomClipSampler, ViewSpec
from ..errors import UserError
from ..heads import ProjectionHead, mlp
from ..losses.audio_visual import cross_modal_nce
from ..losses.regression import normalized_mse_loss
from ..transforms.audio import build_audio_transform
from ..transforms.video import build_video_transform, frame_differences, luma
from .base import Method, MethodConfig, StepInfo

STREAMS = ("frame_diff", "gray", "audio")
RECON_TARGETS = ("frame_diff", "gray", "rgb")
RECON_DOWNSAMPLE = 4  # the reconstruction target is the clip at 1/4 of its height and width


@dataclass
class ELoWeights:
    """Weight of each task of the bank: the parameters of the evolutionary search (ELo sec. 3.2)."""

    reconstruction: float = 1.0
    future: float = 1.0
    ordering: float = 1.0
    contrastive: float = 1.0
    distillation: float = 1.0


TASKS: tuple[str, ...] = tuple(f.name for f in fields(ELoWeights))


@dataclass
class ELoConfig(MethodConfig):
    name: str = "elo"
    streams: list[str] = field(default_factory=lambda: list(STREAMS))  # ELo: RGB + flow + grayscale + audio
    stream_backbone: str = ""  # "": backbone.name (own weights, RGB-only kwargs such as input_transform dropped)
    audio_backbone: str = "tiny_audio_resnet"  # ELo: a 2D ResNet on the spectrogram; audio_resnet18 at full size
    audio_rate: int = 16000
    audio_seconds: float = 1.0  # audio window centred on the sampled frames (clip + next clip)
    n_mels: int = 64
    distill_taps: list[str] = field(default_factory=lambda: ["stage2", "stage3", "stage4"])  # ELo: several depths
    recon_target: str = "frame_diff"  # frame_diff | gray | rgb
    recon_hidden: int = 64  # channels of the reconstruction decoder
    proj_hidden_dim: int = 256
    proj_dim: int = 128
    temperature: float = 0.1  # InfoNCE temperature of the contrastive and future tasks (CMC / SimCLR range)
    weights: ELoWeights = field(default_factory=ELoWeights)


def reverse_time(clip: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` played backwards."""
    return clip.flip(2)


def pool_tap(tap: torch.Tensor) -> torch.Tensor:
    """A feature tap -> ``(B, D)``: CNN maps ``(B, D, *spatial)`` are averaged over space-time, transformer tokens
    ``(B, N, D)`` over tokens."""
    if tap.dim() == 3:
        return tap.mean(dim=1)
    return tap.flatten(2).mean(dim=2)


class ReconstructionDecoder(nn.Module):
    """``(B, D, t, h, w)`` feature map -> ``(B, C_out, T, H', W')``: 1x1x1 conv, ReLU, trilinear upsampling to the
    target size, 3x3x3 conv (a deliberately weak decoder, so the encoder's features must carry the content)."""

    def __init__(self, in_dim: int, hidden: int, out_channels: int):
        super().__init__()
        self.reduce = nn.Sequential(nn.Conv3d(in_dim, hidden, 1), nn.ReLU(inplace=True))
        self.out = nn.Conv3d(hidden, out_channels, 3, padding=1)

    def forward(self, features: torch.Tensor, size: tuple[int, int, int]) -> torch.Tensor:
        x = F.interpolate(self.reduce(features), size=size, mode="trilinear", align_corners=False)
        return self.out(x)


class ELo(Method):
    Config = ELoConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self._check(h)
        d = self.backbone.num_features
        self.rgb_taps = list(dict.fromkeys([*h.distill_taps, self.backbone.tap_names[-1]]))
        rgb_channels = self._tap_channels(self.backbone, self._dummy_video(3), self.rgb_taps)
        # Only the heads of tasks with a weight > 0 are built, so that every trainable parameter gets a gradient and
        # DDP needs no ``find_unused_parameters`` (a weight is a fixed setting of a run; the search builds each
        # candidate anew).
        w = {t: float(h.weights[t]) > 0 for t in TASKS}
        # Other streams: their own networks (ELo: one network per modality); none without a cross-stream task.
        self.streams = nn.ModuleDict()
        for stream in (h.streams if w["contrastive"] or w["distillation"] else []):
            self.streams[stream] = self._stream_network(stream)
            if not w["contrastive"]:  # only contrastive alignment trains a stream: otherwise a fixed random teacher
                self.streams[stream].requires_grad_(False)
        # Contrastive alignment: a projection on each side of each (RGB, stream) pair, as BraVe's pairwise heads.
        self.rgb_align, self.stream_align = nn.ModuleDict(), nn.ModuleDict()
        self.distill_heads = nn.ModuleDict()
        for stream, net in self.streams.items():
            if w["contrastive"]:
                self.rgb_align[stream] = ProjectionHead(d, h.proj_hidden_dim, h.proj_dim)
                self.stream_align[stream] = ProjectionHead(net.num_features, h.proj_hidden_dim, h.proj_dim)
            if w["distillation"]:
                teacher = self._tap_channels(net, self._dummy_input(stream), list(h.distill_taps))
                self.distill_heads[stream] = nn.ModuleDict(
                    {tap: nn.Linear(rgb_channels[tap], teacher[tap]) for tap in h.distill_taps})
        if w["future"]:
            self.future_predictor = mlp(d, h.proj_hidden_dim, h.proj_dim)  # clip feature -> next clip's projection
            self.future_projector = ProjectionHead(d, h.proj_hidden_dim, h.proj_dim)
        if w["ordering"]:
            self.order_classifier = nn.Linear(d, 2)  # forward / reversed
        if w["reconstruction"]:
            recon_channels = 1 if h.recon_target == "gray" else 3
            self.decoder = ReconstructionDecoder(rgb_channels[self.rgb_taps[-1]], h.recon_hidden, recon_channels)

    # ---- construction -----------------------------------------------------------------------------
    def _check(self, h: Any) -> None:
        unknown = [s for s in h.streams if s not in STREAMS]
        if unknown or len(set(h.streams)) != len(h.streams):
            raise UserError(f"method.streams: {list(h.streams)} must be distinct names from {', '.join(STREAMS)}")
        if h.recon_target not in RECON_TARGETS:
            raise UserError(f"method.recon_target must be one of {', '.join(RECON_TARGETS)}, got {h.recon_target!r}")
        bad = [t for t in h.distill_taps if t not in self.backbone.tap_names]
        if bad:
            raise UserError(f"method.distill_taps: {bad} are not taps of {self.cfg.backbone.name} "
                            f"(its taps: {', '.join(self.backbone.tap_names) or 'none'})")
        weights = {t: float(h.weights[t]) for t in TASKS}
        if any(w < 0 for w in weights.values()) or not any(w > 0 for w in weights.values()):
            raise UserError(f"method.weights must be >= 0 with at least one > 0, got {weights}")
        if h.temperature <= 0:
            raise UserError(f"method.temperature must be > 0, got {h.temperature}")
        if not h.streams and (weights["contrastive"] > 0 or weights["distillation"] > 0):
            raise UserError("method.streams is empty: set method.weights.contrastive and .distillation to 0")

    @property
    def stream_backbone_name(self) -> str:
        return self.hparams.stream_backbone or self.cfg.backbone.name

    def stream_kwargs(self, stream: str) -> dict[str, Any]:
        """Constructor kwargs of a video stream's network: the RGB kwargs without ``input_transform`` (the stream
        already is its own input) and ``pretrained``, with the stream's channel count."""
        kwargs = {k: v for k, v in self.backbone_kwargs.items() if k not in ("input_transform", "pretrained")}
        kwargs["in_channels"] = 1 if stream == "gray" else 3
        return kwargs

    def _stream_network(self, stream: str) -> Backbone:
        h = self.hparams
        if stream == "audio":
            net = create_backbone(h.audio_backbone)
            if getattr(net, "modality", None) != "audio":
                raise UserError(f"method.audio_backbone: {h.audio_backbone} is not an audio backbone")
        else:
            try:
                net = create_backbone(self.stream_backbone_name, **self.stream_kwargs(stream))
            except TypeError as err:
                raise UserError(f"method.stream_backbone: {self.stream_backbone_name} cannot be built with "
                                f"in_channels for the {stream} stream ({err})") from None
        missing = [t for t in h.distill_taps if t not in net.tap_names]
        if missing and h.weights.distillation > 0:
            raise UserError(f"method.distill_taps: {missing} are not taps of the {stream} stream's network "
                            f"(its taps: {', '.join(net.tap_names) or 'none'})")
        return net

    def _dummy_video(self, channels: int) -> torch.Tensor:
        d = self.cfg.data
        return torch.zeros(2, channels, max(1, int(d.num_frames)), int(d.crop_size), int(d.crop_size))

    def _dummy_input(self, stream: str) -> torch.Tensor:
        if stream == "audio":
            frames = int(self.hparams.audio_seconds * 100) + 1  # 10 ms hop of transforms/audio.py's log-mel
            return torch.zeros(2, 1, int(self.hparams.n_mels), frames)
        return self._dummy_video(1 if stream == "gray" else 3)

    @staticmethod
    @torch.no_grad()
    def _tap_channels(net: Backbone, x: torch.Tensor, names: list[str]) -> dict[str, int]:
        """Channels of each tap, from one forward pass of a dummy input in eval mode (no BN statistics change)."""
        if not names:
            return {}
        was_training = net.training
        net.eval()
        taps = net.feature_taps(x, names)
        net.train(was_training)
        return {name: int(t.shape[-1] if t.dim() == 3 else t.shape[1]) for name, t in taps.items()}

    # ---- data -------------------------------------------------------------------------------------
    @property
    def clip_frames(self) -> int:
        """Frames sampled per video: the clip, then as many again for the future-prediction target."""
        t = int(self.cfg.data.num_frames)
        return 2 * t if self.hparams.weights.future > 0 else t

    def views(self) -> ViewSpec:
        d, h = self.cfg.data, self.hparams
        transforms: dict[str, Any] = {"clip": build_video_transform("ssl", d.crop_size)}
        if "audio" in self.streams:  # built only when a cross-stream task is on
            # One window of clip + next clip; its audio is centred on that window (AVID-style positive pair).
            sampler = AudioVisualSampler(num_frames=self.clip_frames, stride=d.frame_stride,
                                         audio_seconds=h.audio_seconds)
            transforms["audio"] = build_audio_transform("logmel", h.audio_rate, h.n_mels)
            return ViewSpec(sampler=sampler, transforms=transforms, audio_rate=h.audio_rate)
        return ViewSpec(sampler=RandomClipSampler(self.clip_frames, d.frame_stride), transforms=transforms)

    def stream_input(self, stream: str, clip: torch.Tensor, batch: dict[str, Any]) -> torch.Tensor:
        """The input of one stream's network, derived from the RGB clip ``(B, 3, T, H, W)`` or the batch's audio."""
        if stream == "audio":
            return batch["audio"][0]
        return luma(clip) if stream == "gray" else frame_differences(clip, keep_length=True)

    def recon_target(self, clip: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> the reconstruction target ``(B, C', T, H/4, W/4)`` (area-averaged)."""
        kind = self.hparams.recon_target
        if kind == "gray":
            target = luma(clip)
        else:
            target = frame_differences(clip, keep_length=True) if kind == "frame_diff" else clip
        t, height, width = target.shape[2:]
        size = (t, max(1, height // RECON_DOWNSAMPLE), max(1, width // RECON_DOWNSAMPLE))
        return F.adaptive_avg_pool3d(target, size)

    # ---- the task bank ----------------------------------------------------------------------------
    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        h, w = self.hparams, self.hparams.weights
        video = batch["video"][0]  # (B, 3, T or 2T, H, W)
        t = int(self.cfg.data.num_frames)
        clip = video[:, :, :t]
        b = clip.shape[0]
        order_on = w.ordering > 0 and t > 1  # a one-frame clip has no direction
        future_on = w.future > 0 and video.shape[2] >= 2 * t
        # One forward pass for the clip, its next clip and its reversed copy (they share BN statistics).
        inputs = [clip] + ([video[:, :, t:2 * t]] if future_on else []) + ([reverse_time(clip)] if order_on else [])
        taps = self.backbone.feature_taps(torch.cat(inputs), self.rgb_taps)
        last = self.rgb_taps[-1]
        features = pool_tap(taps[last])  # (n * B, D)
        f_clip = features[:b]
        terms: dict[str, torch.Tensor] = {}

        if w.reconstruction > 0:
            target = self.recon_target(clip)
            recon = self.decoder(taps[last][:b], tuple(target.shape[2:]))
            terms["reconstruction"] = F.mse_loss(recon, target)
        if future_on:
            predicted = self.future_predictor(f_clip)
            actual = self.future_projector(features[b:2 * b])
            terms["future"], _ = cross_modal_nce(predicted, actual, h.temperature)
        if order_on:
            start = b * (2 if future_on else 1)
            logits = self.order_classifier(torch.cat([f_clip, features[start:start + b]]))
            labels = torch.cat([torch.zeros(b), torch.ones(b)]).long().to(logits.device)
            terms["ordering"] = F.cross_entropy(logits, labels)
        if self.streams and (w.contrastive > 0 or w.distillation > 0):
            contrast, distill = [], []
            stream_taps = list(h.distill_taps) if w.distillation > 0 else []
            for stream, net in self.streams.items():
                x = self.stream_input(stream, clip, batch)
                names = list(dict.fromkeys([*stream_taps, net.tap_names[-1]]))
                s_taps = net.feature_taps(x, names)
                if w.contrastive > 0:
                    loss, _ = cross_modal_nce(self.rgb_align[stream](f_clip),
                                              self.stream_align[stream](pool_tap(s_taps[net.tap_names[-1]])),
                                              h.temperature)
                    contrast.append(loss)
                for tap in stream_taps:
                    student = self.distill_heads[stream][tap](pool_tap(taps[tap][:b]))
                    distill.append(normalized_mse_loss(student, pool_tap(s_taps[tap])))
            if contrast:
                terms["contrastive"] = torch.stack(contrast).mean()
            if distill:
                terms["distillation"] = torch.stack(distill).mean()

        loss = f_clip.new_zeros(())
        for task, value in terms.items():
            loss = loss + float(w[task]) * value
        logs = {f"loss_{task}": value.detach() for task, value in terms.items()}
        return {"loss": loss, **logs, "embedding": f_clip.detach()}

    def extra_encoders(self) -> dict[str, tuple[Backbone, str, dict[str, Any]]]:
        out: dict[str, tuple[Backbone, str, dict[str, Any]]] = {}
        for stream, net in self.streams.items():
            if stream == "audio":
                out["audio"] = (net, self.hparams.audio_backbone, {})
            else:
                out[stream] = (net, self.stream_backbone_name, self.stream_kwargs(stream))
        return out
