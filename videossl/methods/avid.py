"""Audio-visual instance discrimination (Morgado, Vasconcelos and Misra, "Audio-Visual Instance Discrimination
with Cross-Modal Agreement", CVPR 2021), plus the audio-visual base class that L3, AVE-Net and AVID share.

AVID: a video tower and an audio tower, each followed by a projection to a shared 128-d unit sphere. A clip
must pick the audio of its own video among the audio of every other video of the global batch (video-to-audio
InfoNCE), and the audio must pick its own clip (audio-to-video); the loss is the mean of the two directions
(AVID's "cross-modal" variant, the strongest of its Table 1). AVID draws 1024 negatives from a memory bank of
every training clip's embeddings (facebookresearch/AVID-CMA configs/main/avid/*/Cross-N1024.yaml) and scores them
with an NCE loss (criterions/nce.py); here the negatives are the global batch, gathered across processes, as in CLIP / XDC-style in-batch training.
With ``hard_negative=true`` the sampler also takes audio from the SAME video at another time (Korbar et al.,
NeurIPS 2018, AVTS): it is added as one more negative for its own clip, so the model must use timing, not
only the identity of the scene. Among B - 1 other videos that one negative weighs little, so
``sync_weight > 0`` adds AVTS's own task as a second term: each clip picks its synchronised audio over the same
video's audio at another time (a two-way softmax, ``in_video_sync_nce``), the question the synchronisation
test asks.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..backbones import Backbone, create_backbone
from ..data.sampling import AudioVisualSampler, ViewSpec
from ..errors import UserError
from ..heads import EmbeddingPairHead, ProjectionHead
from ..losses.audio_visual import cross_modal_nce, in_video_sync_nce
from ..transforms.audio import build_audio_transform
from ..transforms.video import build_video_transform
from .base import Method, MethodConfig, StepInfo


@dataclass
class AudioVisualConfig(MethodConfig):
    """Fields every audio-visual method shares: the audio tower and how audio is cut and turned into log-mel."""

    name: str = "avid"
    audio_backbone: str = "tiny_audio_resnet"  # AVID / XDC: an 18-layer 2D ResNet on log-mel (audio_resnet18)
    audio_rate: int = 16000  # Hz; AVID resamples to 24 kHz, L3 to 48 kHz, 16 kHz is the speech / AudioSet norm
    audio_seconds: float = 1.0  # L3 / AVE-Net: 1 s of audio around the frame; AVID: 2 s around the clip
    audio_offset: float = 0.0  # shift of the positive audio from the clip centre (synchronisation studies)
    n_mels: int = 64  # log-mel bands (25 ms windows every 10 ms, see transforms/audio.py)
    hard_negative: bool = False  # add audio of the same video at another time as a negative (AVTS)
    min_negative_gap_s: float = 0.5  # that audio lies at least this far from the positive window (centre to centre)
    # "ssl": the contrastive views (random resized crop 0.2-1, colour, audio gain +-6 dB and SpecAugment masks);
    # "light": crop 0.8-1 + flip only, audio untouched, so a 40 ms impact "tock" is never masked out and the
    # loudness of two windows of one video stays comparable (what synchronisation is judged by);
    # "avid": AVID's own (facebookresearch/AVID-CMA datasets/preprocessing.py VideoPrep_MSC_CJ + AudioPrep): random
    # resized crop 0.08-1, flip, colour jitter (0.4, 0.4, 0.4, 0.2) on every clip, no grayscale or blur; audio volume
    # x U(0.9, 1.1) (here +-0.9 dB), no masks
    augment: str = "ssl"


class AudioVisualMethod(Method):
    """A video tower (``self.backbone``, saved as ``encoder.pt``) and an audio tower (``self.audio_backbone``,
    saved as ``encoder_audio.pt``), fed by ``AudioVisualSampler`` views: ``batch["video"][0]`` ``(B, C, T, H, W)``,
    ``batch["audio"][0]`` the positive log-mel ``(B, 1, n_mels, frames)`` and, with ``hard_negative``,
    ``batch["audio"][1]`` audio of the same video at another time.

    Subclasses implement ``training_step`` and ``pair_scores`` (correspondence score of every clip with every
    audio, used by audio-visual retrieval and the synchronisation test).
    """

    Config = AudioVisualConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if h.audio_seconds <= 0 or h.audio_rate <= 0:
            raise UserError(f"method.audio_seconds and method.audio_rate must be > 0, got {h.audio_seconds}, {h.audio_rate}")
        self.audio_backbone: Backbone = create_backbone(h.audio_backbone)
        if h.augment not in ("ssl", "light", "avid"):
            raise UserError(f"method.augment must be ssl, light or avid, got {h.augment!r}")
        if getattr(self.audio_backbone, "modality", None) != "audio":
            raise UserError(f"method.audio_backbone: {h.audio_backbone} is not an audio backbone")

    def views(self) -> ViewSpec:
        d, h = self.cfg.data, self.hparams
        sampler = AudioVisualSampler(num_frames=d.num_frames, stride=d.frame_stride, audio_seconds=h.audio_seconds,
                                     audio_offset=h.audio_offset, hard_negative=h.hard_negative,
                                     min_negative_gap_s=h.min_negative_gap_s)
        return ViewSpec(sampler=sampler, transforms=self.view_transforms(), audio_rate=h.audio_rate)

    def view_transforms(self) -> dict[str, Any]:
        h, crop = self.hparams, self.cfg.data.crop_size
        if h.augment == "light":
            return {"clip": build_video_transform("finetune", crop, scale=(0.8, 1.0)),
                    "audio": build_audio_transform("logmel", h.audio_rate, h.n_mels, augment=False)}
        if h.augment == "avid":
            return {"clip": build_video_transform("ssl", crop, scale=(0.08, 1.0), jitter=(0.4, 0.4, 0.4, 0.2),
                                                  jitter_p=1.0, gray_p=0.0, blur_p=0.0),
                    "audio": build_audio_transform("logmel", h.audio_rate, h.n_mels, gain_db=0.9, time_mask=0,
                                                   freq_mask=0)}
        return {"clip": build_video_transform("ssl", crop),
                "audio": build_audio_transform("logmel", h.audio_rate, h.n_mels)}

    def extra_encoders(self) -> dict[str, tuple[Backbone, str, dict[str, Any]]]:
        return {"audio": (self.audio_backbone, self.hparams.audio_backbone, {})}

    def pair_scores(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """``(Nv, C, T, H, W)`` clips and ``(Na, 1, n_mels, frames)`` audio -> ``(Nv, Na)`` correspondence scores
        (higher = more likely the same moment of the same video)."""
        raise NotImplementedError


@dataclass
class AVIDConfig(AudioVisualConfig):
    name: str = "avid"
    audio_seconds: float = 2.0  # audio longer than the clip, as in AVID / XDC (they use about 2 s of audio)
    temperature: float = 0.07  # AVID sec. 4: tau = 0.07
    proj_hidden_dim: int = 512  # AVID projects 512-d features to 128-d with a 2-layer MLP
    proj_dim: int = 128  # AVID: 128-d embeddings
    # linear layers of each projection and BN after the hidden ones: 2 with BN is SimCLR's head; AVID-CMA's
    # configs proj_dim [512, 512, 128] are 3 linear layers with ReLU and no BN (models/av_wrapper.py Head)
    proj_layers: int = 2
    proj_batch_norm: bool = True
    sync_weight: float = 0.0  # weight of the AVTS in-video term (needs hard_negative); 0: AVID alone


class AVID(AudioVisualMethod):
    Config = AVIDConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if h.temperature <= 0:
            raise UserError(f"method.temperature must be > 0, got {h.temperature}")
        if h.sync_weight < 0 or (h.sync_weight > 0 and not h.hard_negative):
            raise UserError(f"method.sync_weight={h.sync_weight}: must be >= 0, and > 0 needs method.hard_negative=true "
                            "(the in-video term compares the clip's audio with the same video's audio at another time)")
        head = {"num_layers": h.proj_layers, "batch_norm": h.proj_batch_norm}
        self.video_head = ProjectionHead(self.backbone.num_features, h.proj_hidden_dim, h.proj_dim, **head)
        self.audio_head = ProjectionHead(self.audio_backbone.num_features, h.proj_hidden_dim, h.proj_dim, **head)

    def extra_encoders(self) -> dict[str, tuple[Any, str, dict[str, Any]]]:
        """The audio tower and both projections (``encoder_av_head.pt``, read by ``videossl eval av-retrieval`` /
        ``av-sync`` to score pairs without the method class)."""
        h = self.hparams
        kwargs = {"video_dim": self.backbone.num_features, "audio_dim": self.audio_backbone.num_features,
                  "hidden_dim": int(h.proj_hidden_dim), "proj_dim": int(h.proj_dim), "num_layers": int(h.proj_layers),
                  "batch_norm": bool(h.proj_batch_norm),
                  "audio": {"audio_rate": int(h.audio_rate), "audio_seconds": float(h.audio_seconds), "n_mels": int(h.n_mels)}}
        with torch.random.fork_rng(devices=[]):  # the throwaway init of the replaced layers draws no training RNG
            head = EmbeddingPairHead(**kwargs)
        head.video_head, head.audio_head = self.video_head, self.audio_head  # shared: the saved weights are the method's
        return {**super().extra_encoders(), "av_head": (head, "avid_embedding", kwargs)}

    def embed_video(self, clips: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> unit ``(B, proj_dim)``."""
        return F.normalize(self.video_head(self.backbone(clips)), dim=-1)

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """``(B, 1, n_mels, frames)`` -> unit ``(B, proj_dim)``."""
        return F.normalize(self.audio_head(self.audio_backbone(audio)), dim=-1)

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        audio_views = batch["audio"]
        v = self.embed_video(batch["video"][0])
        # The positive audio and the hard negative share one forward pass (and BN statistics).
        a = self.embed_audio(torch.cat(audio_views, dim=0)).chunk(len(audio_views))
        h = self.hparams
        loss, top1 = cross_modal_nce(v, a[0], h.temperature, a[1] if len(a) > 1 else None)
        out = {"v2a_top1": top1, "embedding": v.detach()}
        if h.sync_weight > 0:
            sync_loss, sync_accuracy = in_video_sync_nce(v, a[0], a[1], h.temperature)
            loss = loss + h.sync_weight * sync_loss
            out.update(sync_loss=sync_loss.detach(), sync_accuracy=sync_accuracy)
        return {"loss": loss, **out}

    @torch.no_grad()
    def pair_scores(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.embed_video(video) @ self.embed_audio(audio).T
