"""Audio-visual contrastive losses: cross-modal InfoNCE (Morgado, Vasconcelos and Misra, "Audio-Visual Instance
Discrimination with Cross-Modal Agreement", CVPR 2021, https://arxiv.org/abs/2004.12943) and the in-video
synchronisation task (Korbar, Tran and Torresani, "Cooperative Learning of Audio and Video Models from
Self-Supervised Synchronization", NeurIPS 2018, https://arxiv.org/abs/1807.00230).

``cross_modal_nce`` is also ELo's cross-stream alignment and future-prediction score (any two embeddings of the
same B samples, not only video and audio).
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .distributed import gather_with_grad, rank


def cross_modal_nce(video: torch.Tensor, audio: torch.Tensor, temperature: float,
                    hard_audio: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Video-to-audio and audio-to-video InfoNCE (AVID eq. 3, cross-modal terms), averaged.

    video, audio: ``(B, D)`` embeddings of the same B videos (L2-normalised here). Negatives of a clip are the
    audio of every other video of the global batch (and ``hard_audio`` ``(B, D)``, the same video's audio at
    another time, when given); negatives of an audio are the other clips. Returns ``(loss, v2a top-1)``.
    """
    video, audio = F.normalize(video, dim=-1), F.normalize(audio, dim=-1)
    all_video, all_audio = gather_with_grad(video), gather_with_grad(audio)  # (N, D)
    target = torch.arange(video.shape[0], device=video.device) + rank() * video.shape[0]
    v2a = video @ all_audio.T / temperature  # (B, N)
    if hard_audio is not None:
        hard = (video * F.normalize(hard_audio, dim=-1)).sum(dim=-1, keepdim=True) / temperature  # (B, 1)
        v2a = torch.cat([v2a, hard], dim=1)
    a2v = audio @ all_video.T / temperature
    loss = 0.5 * (F.cross_entropy(v2a, target) + F.cross_entropy(a2v, target))
    top1 = (v2a.argmax(dim=1) == target).float().mean()
    return loss, top1.detach()


def in_video_sync_nce(video: torch.Tensor, audio: torch.Tensor, hard_audio: torch.Tensor,
                      temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    """AVTS's in-video task (Korbar et al., NeurIPS 2018): is the clip in sync with ``audio`` (its own time) or
    with ``hard_audio`` (the same video at another time)? A two-way softmax over the cosine similarities.

    video, audio, hard_audio: ``(B, D)`` (L2-normalised here). Returns ``(loss, accuracy)``: the mean
    cross-entropy of picking ``audio``, and the fraction of clips that score it higher.
    """
    video = F.normalize(video, dim=-1)
    pos = (video * F.normalize(audio, dim=-1)).sum(dim=-1)  # (B,)
    neg = (video * F.normalize(hard_audio, dim=-1)).sum(dim=-1)
    logits = torch.stack([pos, neg], dim=1) / temperature  # (B, 2): class 0 is the synchronised audio
    loss = F.cross_entropy(logits, torch.zeros(len(video), dtype=torch.long, device=video.device))
    return loss, (pos > neg).float().mean().detach()
