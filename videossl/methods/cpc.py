"""Contrastive Predictive Coding on raw audio (van den Oord, Li and Vinyals, "Representation Learning with
Contrastive Predictive Coding", 2018, sec. 3.1).

The backbone IS the audio encoder (``backbone.name=cpc_encoder`` / ``tiny_cpc_encoder``): a strided 1D conv
encoder maps a waveform to ``z`` (one 512-d vector per 10 ms), a GRU summarises ``z_{<=t}`` into the context
``c_t`` (256-d), and one linear predictor per future step k = 1..K (K = 12) maps ``c_t`` to a guess of
``z_{t+k}``; InfoNCE (losses/cpc.py) makes the guess pick the true ``z_{t+k}`` among the other positions of the
same sequence and all positions of the other sequences of the batch. The views are one long waveform window per
file (CPC: 20480 samples = 1.28 s at 16 kHz), read from audio files (LibriSpeech, the espeak-ng speaker set of
``videossl.data.speech``) or from the audio track of videos.

Evaluation: a linear probe on the frozen context ``c`` averaged over time (``videossl eval audio-linear``); CPC
reports 97.4% LibriSpeech speaker identification (251 speakers) and 64.6% phone classification.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..config import MethodConfig
from ..data.sampling import LongAudioSampler, ViewSpec
from ..errors import UserError
from ..losses.cpc import cpc_info_nce
from .base import Method, StepInfo

HOP = 160  # the CPC encoder's total stride (5 * 4 * 2 * 2 * 2 samples per step)


@dataclass
class CPCConfig(MethodConfig):
    name: str = "cpc"
    seconds: float = 1.28  # CPC: 20480-sample windows at 16 kHz
    audio_rate: int = 16000  # CPC: 16 kHz LibriSpeech
    pred_steps: int = 12  # CPC: predict 12 steps (120 ms) ahead
    max_positions: int = 0  # context positions scored per step (random subset, 0: all) to bound the N x N logits
    # CPC scores with raw dot products (temperature 1, normalize false). Without normalisation layers in the encoder
    # (CPC_audio, Riviere et al. 2020, adds channel norm) a freshly initialised 5-conv ReLU stack gives near-constant,
    # tiny z on raw audio and the raw-dot-product loss sits at log(N) without moving; cosine scores at temperature 0.1
    # (wav2vec 2.0's choice) and a per-window standardised waveform train from the first step.
    normalize: bool = True
    temperature: float = 0.1
    standardize_input: bool = True  # zero mean, unit variance per window (wav2vec / CPC_audio normalise the input)
    gain_db: float = 0.0  # random gain augmentation (CPC used none)


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
        width = self.backbone.convs[-1][0].out_channels  # z's dimension
        self.predictors = nn.ModuleList(nn.Linear(self.backbone.num_features, width) for _ in range(h.pred_steps))

    def views(self) -> ViewSpec:
        from ..transforms.audio import build_audio_transform

        h = self.hparams
        transform = build_audio_transform("raw", h.audio_rate, augment=h.gain_db > 0, gain_db=h.gain_db)
        return ViewSpec(sampler=LongAudioSampler(h.seconds), transforms={"audio": transform}, audio_rate=h.audio_rate)

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
        for k, predictor in enumerate(self.predictors, start=1):
            positions = torch.arange(length - k, device=z.device)
            if 0 < h.max_positions < len(positions):
                positions = positions[torch.randperm(len(positions), device=z.device)[: h.max_positions]]
            prediction = predictor(c[:, positions])  # (B, N, width): W_k c_t
            target = z[:, positions + k]
            if h.normalize:
                prediction, target = F.normalize(prediction, dim=-1), F.normalize(target, dim=-1)
            loss, top1 = cpc_info_nce(prediction, target, h.temperature)
            losses.append(loss)
            accuracies.append(top1)
        out = {"loss": torch.stack(losses).mean(), "top1_step1": accuracies[0],
               f"top1_step{len(accuracies)}": accuracies[-1]}
        # The monitor watches z at a few positions of every sequence: CPC collapses when z stops varying.
        return {**out, "embedding": z[:, :: max(1, length // 8)].flatten(0, 1).detach()}
