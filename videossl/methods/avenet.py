"""AVE-Net (Arandjelovic and Zisserman, "Objects that Sound", ECCV 2018): audio-visual correspondence through
embeddings compared by distance, and sound-source localisation maps.

Vision and audio towers give 512-d features; each goes through two fully connected layers (512 -> 128 -> 128,
paper fig. 2) and is L2-normalised. The only thing the correspondence classifier sees is the Euclidean distance
between the two 128-d embeddings (a 1 -> 2 linear layer calibrates it into "corresponds / does not"), so the
embeddings are forced into one metric space and work for cross-modal retrieval. Pairs and negatives are L3's:
half positives, half audio of another video (or, with ``hard_negative``, the same video at another time).

Localisation: the vision head is applied to every position of the last convolutional map (as AVOL-Net in the
same paper does with 1x1 convolutions), and the cosine similarity of each position's embedding with the audio
embedding is the map of where the sound comes from (``localisation_maps``, also ``heads.AVENetHead``'s for a saved
run; ``videossl.pictures.save_localisation_overlays`` writes PNG overlays; ``videossl eval av-localise RUN_DIR``).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..heads import AVENetHead, embedding_head, localisation_maps
from .avid import AudioVisualConfig, AudioVisualMethod
from .base import StepInfo


@dataclass
class AVENetConfig(AudioVisualConfig):
    name: str = "avenet"
    embed_dim: int = 128  # AVE-Net: 128-d embeddings
    negative_fraction: float = 0.5  # half of the pairs do not correspond (as L3)
    hard_fraction: float = 0.5  # with hard_negative: share of negatives from the same video at another time


class AVENet(AudioVisualMethod):
    Config = AVENetConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if not 0.0 < h.negative_fraction < 1.0:
            raise UserError(f"method.negative_fraction must be in (0, 1), got {h.negative_fraction}")
        self.video_head = embedding_head(self.backbone.num_features, h.embed_dim)
        self.audio_head = embedding_head(self.audio_backbone.num_features, h.embed_dim)
        self.calibrate = nn.Linear(1, 2)  # distance -> (does not correspond, corresponds) logits
        with torch.no_grad():  # start with "small distance = corresponds" (distances of unit vectors are in [0, 2])
            self.calibrate.weight.copy_(torch.tensor([[1.0], [-1.0]]))
            self.calibrate.bias.copy_(torch.tensor([-1.0, 1.0]))

    def extra_encoders(self) -> dict[str, tuple[Any, str, dict[str, Any]]]:
        """The audio tower and the correspondence head (``encoder_avc_head.pt``, read by ``videossl eval avc``)."""
        h = self.hparams
        kwargs = {"video_dim": self.backbone.num_features, "audio_dim": self.audio_backbone.num_features,
                  "embed_dim": int(h.embed_dim),
                  "audio": {"audio_rate": int(h.audio_rate), "audio_seconds": float(h.audio_seconds), "n_mels": int(h.n_mels)}}
        with torch.random.fork_rng(devices=[]):  # the throwaway init of the replaced layers draws no training RNG
            head = AVENetHead(**kwargs)  # (it runs at every checkpoint; a resumed run restores the RNG of before it)
        head.video_head, head.audio_head, head.calibrate = self.video_head, self.audio_head, self.calibrate  # shared
        return {**super().extra_encoders(), "avc_head": (head, "avenet_distance", kwargs)}

    def embed_video(self, clips: torch.Tensor) -> torch.Tensor:
        """``(B, C, T, H, W)`` -> unit ``(B, embed_dim)``."""
        return F.normalize(self.video_head(self.backbone(clips)), dim=-1)

    def embed_audio(self, audio: torch.Tensor) -> torch.Tensor:
        """``(B, 1, n_mels, frames)`` -> unit ``(B, embed_dim)``."""
        return F.normalize(self.audio_head(self.audio_backbone(audio)), dim=-1)

    def correspondence_logits(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Unit embeddings ``(B, E)``, ``(B, E)`` -> ``(B, 2)`` logits from their Euclidean distance only."""
        return self.calibrate((video - audio).norm(dim=-1, keepdim=True))

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        h = self.hparams
        v = self.embed_video(batch["video"][0])
        audio_views = batch["audio"]
        a = self.embed_audio(torch.cat(audio_views, dim=0)).chunk(len(audio_views))
        b = v.shape[0]
        is_negative = torch.rand(b, device=v.device) < h.negative_fraction
        if b > 1:
            other = a[0].roll(int(torch.randint(1, b, (1,))), dims=0)  # another video's audio
        else:
            other = a[1] if len(a) > 1 else a[0]
            is_negative &= len(a) > 1
        paired = torch.where(is_negative[:, None], other, a[0])
        if len(a) > 1:
            hard = is_negative & (torch.rand(b, device=v.device) < h.hard_fraction)
            paired = torch.where(hard[:, None], a[1], paired)
        labels = (~is_negative).long()
        logits = self.correspondence_logits(v, paired)
        loss = F.cross_entropy(logits, labels)
        accuracy = (logits.argmax(dim=1) == labels).float().mean()
        return {"loss": loss, "avc_accuracy": accuracy.detach(), "embedding": v.detach()}

    @torch.no_grad()
    def pair_scores(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Negative Euclidean distance of every clip embedding to every audio embedding: ``(Nv, Na)``."""
        return -torch.cdist(self.embed_video(video), self.embed_audio(audio))

    @torch.no_grad()
    def localisation_maps(self, video: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """Where the sound comes from: ``(B, C, T, H, W)`` clips and their ``(B, 1, n_mels, frames)`` audio ->
        ``(B, h, w)`` cosine similarity in [-1, 1] of each position's visual embedding with the audio embedding.

        Needs a convolutional video backbone (``forward_tokens`` -> ``(B, D, t, h, w)``); time is averaged.
        """
        tokens = self.backbone.forward_tokens(video)
        if tokens.dim() != 5:
            raise UserError(f"avenet localisation needs a convolutional backbone ((B, D, t, h, w) tokens); "
                            f"{self.cfg.backbone.name} gives {tuple(tokens.shape)}")
        return localisation_maps(tokens, self.video_head, self.embed_audio(audio))  # heads.py: AVENetHead's too
