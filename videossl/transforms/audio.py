"""Audio augmentation on torchaudio: log-mel spectrograms, SpecAugment masking, gain and mixing.

Transforms take one audio view's float waveform ``(1, samples)`` (mono, as decoded at
``ViewSpec.audio_rate``) and return ``(1, samples)`` (``kind="raw"``) or a log-mel ``(1, n_mels, frames)``
(``kind="logmel"``). Random draws come from torch's global RNG, seeded per sample by ``VideoDataset``.
"""
from __future__ import annotations

import torch
import torchaudio
from torch import nn


class LogMel(nn.Module):
    """``(1, samples)`` -> log-mel ``(1, n_mels, frames)`` in decibels.

    25 ms windows every 10 ms (the usual speech / AudioSet front end, e.g. Arandjelovic & Zisserman 2017
    and BYOL-A, Niizumi et al. 2021, 64 mel bands); power spectrogram, ``10 log10`` clipped at ``top_db``
    below the peak. frames = ``samples // hop + 1``.
    """

    def __init__(self, sample_rate: int = 16000, n_mels: int = 64, win_ms: float = 25.0, hop_ms: float = 10.0,
                 f_min: float = 0.0, f_max: float | None = None, top_db: float | None = 80.0):
        super().__init__()
        win = int(round(sample_rate * win_ms / 1000))
        self.hop = int(round(sample_rate * hop_ms / 1000))
        n_fft = 1 << (win - 1).bit_length()  # next power of two >= the window
        self.mel = torchaudio.transforms.MelSpectrogram(sample_rate=sample_rate, n_fft=n_fft, win_length=win,
                                                        hop_length=self.hop, f_min=f_min, f_max=f_max,
                                                        n_mels=n_mels, power=2.0)
        self.to_db = torchaudio.transforms.AmplitudeToDB(stype="power", top_db=top_db)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.ndim != 2 or wave.shape[0] != 1:
            raise ValueError(f"LogMel expects a mono waveform (1, samples), got {tuple(wave.shape)}")
        return self.to_db(self.mel(wave) + 1e-10)


class SpecMask(nn.Module):
    """SpecAugment masking (Park et al. 2019) on ``(1, n_mels, frames)``: ``num_masks`` time masks of up to
    ``time_mask`` frames and frequency masks of up to ``freq_mask`` bands, filled with the mean value."""

    def __init__(self, time_mask: int = 20, freq_mask: int = 8, num_masks: int = 1):
        super().__init__()
        self.num_masks = num_masks
        self.time = torchaudio.transforms.TimeMasking(time_mask) if time_mask > 0 else None
        self.freq = torchaudio.transforms.FrequencyMasking(freq_mask) if freq_mask > 0 else None

    def forward(self, spec: torch.Tensor) -> torch.Tensor:
        fill = float(spec.mean())
        for _ in range(self.num_masks):
            if self.time is not None:
                spec = self.time(spec, mask_value=fill)
            if self.freq is not None:
                spec = self.freq(spec, mask_value=fill)
        return spec


class RandomGain(nn.Module):
    """Multiply a waveform by a gain drawn uniformly in ``[-max_db, +max_db]`` decibels, with probability ``p``."""

    def __init__(self, max_db: float = 6.0, p: float = 1.0):
        super().__init__()
        self.max_db, self.p = max_db, p

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if self.max_db <= 0 or torch.rand(()) >= self.p:
            return wave
        db = float(torch.empty(()).uniform_(-self.max_db, self.max_db))
        return wave * (10.0 ** (db / 20.0))


def mix_waveforms(wave: torch.Tensor, other: torch.Tensor, ratio: float) -> torch.Tensor:
    """``(1 - ratio) * wave + ratio * other`` with ``other`` cut or zero-padded to ``wave``'s length."""
    other = other[..., : wave.shape[-1]]
    other = torch.nn.functional.pad(other, (0, wave.shape[-1] - other.shape[-1]))
    return (1.0 - ratio) * wave + ratio * other


def mix_batch(batch: torch.Tensor, max_ratio: float = 0.4, generator: torch.Generator | None = None) -> torch.Tensor:
    """Mix every sample of ``(B, 1, samples)`` with another sample of the batch (a random permutation), each
    with its own ratio in ``[0, max_ratio]``: background mixing as in BYOL-A's mixup (Niizumi et al. 2021, 0.4).
    Works on waveforms; for log-mels mix in the linear domain first."""
    perm = torch.randperm(batch.shape[0], generator=generator, device="cpu").to(batch.device)
    ratio = torch.rand(batch.shape[0], generator=generator).to(batch) * max_ratio
    ratio = ratio.view(-1, *([1] * (batch.ndim - 1)))
    return (1.0 - ratio) * batch + ratio * batch[perm]


class AudioTransform(nn.Module):
    """A sequence of audio steps as one ``ViewSpec`` transform."""

    def __init__(self, steps: list[nn.Module]):
        super().__init__()
        self.steps = nn.ModuleList(steps)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        wave = torch.as_tensor(wave, dtype=torch.float32)
        if wave.ndim == 1:
            wave = wave.unsqueeze(0)
        for step in self.steps:
            wave = step(wave)
        return wave


def build_audio_transform(kind: str = "logmel", sample_rate: int = 16000, n_mels: int = 64, augment: bool = True,
                          gain_db: float = 6.0, time_mask: int = 20, freq_mask: int = 8, num_masks: int = 1,
                          win_ms: float = 25.0, hop_ms: float = 10.0) -> AudioTransform:
    """The per-view audio transform: ``(1, samples)`` -> ``(1, n_mels, frames)`` (``"logmel"``) or ``(1, samples)``
    (``"raw"``, for waveform models such as CPC). ``augment`` adds a random gain (+-``gain_db``) and, for
    log-mels, SpecAugment time/frequency masks; ``augment=False`` is the evaluation transform."""
    if kind not in ("logmel", "raw"):
        raise ValueError(f"unknown audio transform kind {kind!r} (expected logmel or raw)")
    steps: list[nn.Module] = [RandomGain(gain_db)] if augment and gain_db > 0 else []
    if kind == "logmel":
        steps.append(LogMel(sample_rate, n_mels, win_ms=win_ms, hop_ms=hop_ms))
        if augment and (time_mask > 0 or freq_mask > 0):
            steps.append(SpecMask(time_mask, freq_mask, num_masks))
    return AudioTransform(steps)
