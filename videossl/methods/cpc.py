"""Contrastive Predictive Coding on raw audio (van den Oord, Li and Vinyals, "Representation Learning with
Contrastive Predictive Coding", 2018, sec. 3.1).

The backbone IS the audio encoder (``backbone.name=cpc_encoder`` / ``tiny_cpc_encoder``): a strided 1D conv
encoder maps a waveform to ``z`` (one 512-d vector per 10 ms), a GRU summarises ``z_{<=t}`` into the context
``c_t`` (256-d), and one linear predictor per future step k = 1..K (K = 12) maps ``c_t`` to a guess of
``z_{t+k}``; InfoNCE (losses/cpc.py) makes the guess pick the true ``z_{t+k}`` among the other positions of the
same sequence and the positions of the other sequences of the batch (or of a group of it, ``negative_group``).
The score is CPC's log-bilinear ``z_{t+k}^T W_k c_t`` (``score=bilinear``, eq. 3) or a cosine at a temperature
(``score=cosine``). The views are one long waveform window per
file (CPC: 20480 samples = 1.28 s at 16 kHz), read from audio files (LibriSpeech, the espeak-ng speaker set of
``videossl.data.speech``) or from the audio track of videos.

Evaluation: a linear probe on the frozen context ``c`` averaged over each window (``videossl eval audio-linear``,
``eval/librispeech_speaker_cpc``); CPC probes ``c_t`` frame by frame and reports 97.4% LibriSpeech speaker
identification (251 speakers) and 64.6% phone classification (Table 1).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..data.sampling import LongAudioSampler, ViewSpec
from ..errors import UserError
from ..losses.cpc import cpc_info_nce
from ..transforms.audio import build_audio_transform
from .base import Method, MethodConfig, StepInfo

HOP = 160  # the CPC encoder's total stride (5 * 4 * 2 * 2 * 2 samples per step)


@dataclass
class CPCConfig(MethodConfig):
    name: str = "cpc"
    seconds: float = 1.28  # CPC: 20480-sample windows at 16 kHz
    audio_rate: int = 16000  # CPC: 16 kHz LibriSpeech
    pred_steps: int = 12  # CPC: predict 12 steps (120 ms) ahead
    max_positions: int = 0  # context positions scored per step (random subset, 0: all) to bound the N x N logits
    # "bilinear": CPC eq. 3, log f_k = z_{t+k}^T W_k c_t with one bias-free linear W_k per step (CPC_audio's
    # --rnnMode linear), temperature 1. "cosine": cos(W_k c_t, z_{t+k}) / temperature (wav2vec 2.0's score), which
    # trains from the first step on the small espeak-ng set (cpc_speech_tiny_cpc).
    score: str = "bilinear"
    temperature: float = 0.1  # cosine only; the bilinear score has none (CPC eq. 3)
    # Candidates (losses/cpc.py): 0 = every position of the global batch; g = groups of g sequences of this process's
    # batch (CPC: negatives from each GPU's minibatch of 8)
    negative_group: int = 0
    num_negatives: int = 0  # 0: every candidate in the softmax; M: M drawn uniformly (CPC_audio: 128)
    # zero mean, unit variance per window: neither CPC nor CPC_audio does this (CPC_audio normalises inside its encoder,
    # channel or batch norm after every conv; our cpc_encoder has no norm layer), it keeps z off zero at the first step
    standardize_input: bool = True
    gain_db: float = 0.0  # random gain augmentation (CPC used none)


SCORES = ("bilinear", "cosine")


class CPC(Method):
    Config = CPCConfig
    smoke_overrides = ("backbone.name=tiny_cpc_encoder", "method.seconds=0.64", "method.pred_steps=4")

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        if not (hasattr(self.backbone, "encode") and hasattr(self.backbone, "context")):
            raise UserError(f"cpc needs a CPC encoder backbone (backbone.name=cpc_encoder or tiny_cpc_encoder), "
                            f"got {cfg.backbone.name}")
        steps = round(h.seconds * h.audio_rate) // HOP
        if h.pred_steps < 1 or steps <= h.pred_steps:
            raise UserError(f"method.seconds={h.seconds} gives {steps} encoder steps at {h.audio_rate} Hz; "
                            f"need more than method.pred_steps={h.pred_steps}")
        if h.score not in SCORES:
            raise UserError(f"method.score: '{h.score}' is not one of {', '.join(SCORES)}")
        if h.negative_group < 0 or h.num_negatives < 0:
            raise UserError(f"method.negative_group and method.num_negatives must be >= 0, got "
                            f"{h.negative_group}, {h.num_negatives}")
        if h.negative_group and cfg.train.batch_size % h.negative_group:
            raise UserError(f"train.batch_size={cfg.train.batch_size} is not a multiple of "
                            f"method.negative_group={h.negative_group}")
        width = self.backbone.convs[-1][0].out_channels  # z's dimension
        # W_k: (context_dim -> width) per step; bias-free for the bilinear score so that logits are exactly z^T W_k c
        self.predictors = nn.ModuleList(nn.Linear(self.backbone.num_features, width, bias=h.score == "cosine")
                                        for _ in range(h.pred_steps))

    def views(self) -> ViewSpec:
        h = self.hparams
        transform = build_audio_transform("raw", h.audio_rate, augment=h.gain_db > 0, gain_db=h.gain_db)
        return ViewSpec(sampler=LongAudioSampler(h.seconds), transforms={"audio": transform}, audio_rate=h.audio_rate)

    def score_inputs(self, c: torch.Tensor, z: torch.Tensor, k: int,
                     positions: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, float]:
        """``(prediction, target, temperature)`` for step ``k`` at context ``positions``: the InfoNCE logit of
        context ``(b, t)`` against candidate ``(b', t')`` is ``prediction[b, t] . target[b', t'] / temperature``.
        Bilinear: ``W_k c_t`` and ``z_{t+k}``, temperature 1, so the logit is CPC eq. 3's ``z^T W_k c``; cosine: both
        normalised, ``method.temperature``. c ``(B, L, context_dim)``, z ``(B, L, width)`` -> ``(B, N, width)`` x 2."""
        prediction = self.predictors[k - 1](c[:, positions])  # (B, N, width): W_k c_t
        target = z[:, positions + k]
        if self.hparams.score == "cosine":
            return F.normalize(prediction, dim=-1), F.normalize(target, dim=-1), float(self.hparams.temperature)
        return prediction, target, 1.0

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        h = self.hparams
        wave = batch["audio"][0]  # (B, 1, samples)
        wave = wave[..., : wave.shape[-1] // HOP * HOP]
        if h.standardize_input:
            wave = (wave - wave.mean(dim=-1, keepdim=True)) / wave.std(dim=-1, keepdim=True).clamp_min(1e-5)
        z = self.backbone.encode(wave)  # (B, L, width)
        c = self.backbone.context(z)  # (B, L, context_dim); c_t has seen z_{<=t} only
        length = z.shape[1]
        losses, accuracies = [], []
        for k in range(1, len(self.predictors) + 1):
            positions = torch.arange(length - k, device=z.device)
            if 0 < h.max_positions < len(positions):
                positions = positions[torch.randperm(len(positions), device=z.device)[: h.max_positions]]
            prediction, target, temperature = self.score_inputs(c, z, k, positions)
            loss, top1 = cpc_info_nce(prediction, target, temperature, group_size=h.negative_group,
                                      num_negatives=h.num_negatives)
            losses.append(loss)
            accuracies.append(top1)
        out = {"loss": torch.stack(losses).mean(), "top1_step1": accuracies[0],
               f"top1_step{len(accuracies)}": accuracies[-1]}
        # The monitor watches z at a few positions of every sequence: CPC collapses when z stops varying.
        return {**out, "embedding": z[:, :: max(1, length // 8)].flatten(0, 1).detach()}
