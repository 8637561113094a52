"""Look, Listen and Learn (Arandjelovic and Zisserman, ICCV 2017): audio-visual correspondence (AVC).

A frame (``data.num_frames=1``) or clip and 1 s of log-mel audio go through a vision and an audio tower; their
512-d features are concatenated and two fully connected layers (1024 -> 128 -> 2, L3 fig. 2) decide whether
they correspond. Half of the pairs are positives (audio of the same moment) and half negatives: by default
audio of another video of the batch (L3's negatives); with ``hard_negative=true`` half of the negatives are
audio of the same video at another time (Korbar et al. 2018), which only timing can tell apart.
L3 reports 74% AVC accuracy on Kinetics-Sounds (recipes/l3_kinetics_sounds_resnet18.yaml).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F

from ..errors import UserError
from ..heads import L3FusionHead
from .avid import AudioVisualConfig, AudioVisualMethod
from .base import StepInfo


@dataclass
class L3Config(AudioVisualConfig):
    name: str = "l3"
    fusion_hidden_dim: int = 128  # L3 fig. 2: fc 1024 -> 128 -> 2
    negative_fraction: float = 0.5  # L3: positives and negatives equally likely
    hard_fraction: float = 0.5  # with hard_negative: share of negatives taken from the same video


def audio_geometry(hparams: Any) -> dict[str, Any]:
    """The audio settings an AVC head was trained with, recorded in ``encoder_avc_head.pt``."""
    return {"audio_rate": int(hparams.audio_rate), "audio_seconds": float(hparams.audio_seconds),
            "n_mels": int(hparams.n_mels)}


class L3(AudioVisualMethod):
    Config = L3Config

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if not 0.0 < h.negative_fraction < 1.0:
            raise UserError(f"method.negative_fraction must be in (0, 1), got {h.negative_fraction}")
        # same parameter names as the former nn.Sequential (fusion.0 / fusion.2), so older checkpoints load
        self.fusion = L3FusionHead(self.backbone.num_features, self.audio_backbone.num_features, h.fusion_hidden_dim,
                                   audio=audio_geometry(h))

    def correspondence_logits(self, video_features: torch.Tensor, audio_features: torch.Tensor) -> torch.Tensor:
        """``(B, Dv)`` and ``(B, Da)`` features -> ``(B, 2)`` logits (class 1 = they correspond)."""
        return self.fusion.correspondence_logits(video_features, audio_features)

    def extra_encoders(self) -> dict[str, tuple[Any, str, dict[str, Any]]]:
        """The audio tower and the fusion head (``encoder_avc_head.pt``, read by ``videossl eval avc``)."""
        f = self.fusion
        kwargs = {"video_dim": f[0].in_features - self.audio_backbone.num_features,
                  "audio_dim": self.audio_backbone.num_features, "hidden_dim": f[0].out_features, "audio": dict(f.audio)}
        return {**super().extra_encoders(), "avc_head": (f, "l3_fusion", kwargs)}

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        h = self.hparams
        video = self.backbone(batch["video"][0])  # (B, Dv)
        audio_views = batch["audio"]
        audio = self.audio_backbone(torch.cat(audio_views, dim=0)).chunk(len(audio_views))  # (B, Da) each
        b = video.shape[0]
        # Which audio each clip is paired with: its own (label 1), another video's (0) or, with hard negatives,
        # its own video at another time (0). A random derangement picks the other video.
        is_negative = torch.rand(b, device=video.device) < h.negative_fraction
        if b > 1:
            shift = torch.randint(1, b, (1,), device=video.device)
            other = audio[0].roll(int(shift), dims=0)
        else:  # a batch of one has no other video: fall back to the hard negative or to no negative at all
            other = audio[1] if len(audio) > 1 else audio[0]
            is_negative &= len(audio) > 1
        paired = torch.where(is_negative[:, None], other, audio[0])
        if len(audio) > 1:
            hard = is_negative & (torch.rand(b, device=video.device) < h.hard_fraction)
            paired = torch.where(hard[:, None], audio[1], paired)
        labels = (~is_negative).long()
        logits = self.correspondence_logits(video, paired)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return {"loss": loss, "avc_accuracy": accuracy.detach(), "embedding": video.detach()}

    @torch.no_grad()
    def pair_scores(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Log-odds of correspondence for every (clip, audio) pair: ``(Nv, Na)`` (Nv * Na fusion passes)."""
        v, a = self.backbone(video), self.audio_backbone(audio)
        nv, na = v.shape[0], a.shape[0]
        logits = self.correspondence_logits(v.repeat_interleave(na, dim=0), a.repeat(nv, 1))
        return (logits[:, 1] - logits[:, 0]).view(nv, na)
