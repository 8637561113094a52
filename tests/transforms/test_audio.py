"""Audio transforms: log-mel shape and frequency placement, masking, gain, mixing, the factory."""
import math

import pytest
import torch

from videossl.transforms.audio import (LogMel, RandomGain, SpecMask, build_audio_transform, mix_batch,
                                       mix_waveforms)

RATE = 8000


def tone(freq, seconds=1.0, amp=0.5):
    t = torch.arange(int(RATE * seconds)) / RATE
    return (amp * torch.sin(2 * math.pi * freq * t)).unsqueeze(0)  # (1, samples)


def test_logmel_shape_and_energy_follows_pitch():
    mel = LogMel(RATE, n_mels=32)
    low, high = mel(tone(300)), mel(tone(3000))
    assert low.shape == (1, 32, RATE // 80 + 1)  # hop 10 ms = 80 samples
    assert int(low[0].mean(1).argmax()) < int(high[0].mean(1).argmax())
    with pytest.raises(ValueError, match=r"\(1, samples\)"):
        mel(torch.zeros(2, 100))


def test_specmask_masks_something_and_gain_scales():
    spec = torch.arange(32 * 50, dtype=torch.float32).view(1, 32, 50)
    torch.manual_seed(0)
    masked = SpecMask(time_mask=10, freq_mask=6, num_masks=2)(spec.clone())
    assert masked.shape == spec.shape and (masked != spec).any()
    wave = tone(440)
    torch.manual_seed(1)
    louder = RandomGain(max_db=6.0)(wave)
    ratio = float(louder.abs().max() / wave.abs().max())
    assert 10 ** (-6 / 20) - 1e-4 <= ratio <= 10 ** (6 / 20) + 1e-4 and ratio != 1.0


def test_mixing():
    a, b = torch.ones(1, 10), torch.full((1, 6), 3.0)  # b is zero-padded to a's length
    assert torch.allclose(mix_waveforms(a, b, 0.25), torch.tensor([[1.5] * 6 + [0.75] * 4]))
    batch = torch.stack([torch.full((1, 4), float(i)) for i in range(4)])
    mixed = mix_batch(batch, max_ratio=0.4, generator=torch.Generator().manual_seed(0))
    assert mixed.shape == batch.shape
    assert ((mixed - batch).abs() <= 0.4 * 3 + 1e-6).all() and not torch.equal(mixed, batch)


def test_factory_kinds():
    wave = tone(440, seconds=0.5)
    torch.manual_seed(0)
    spec = build_audio_transform("logmel", RATE, n_mels=16)(wave)
    assert spec.shape == (1, 16, 51)  # 4000 samples / hop 80 + 1
    raw = build_audio_transform("raw", RATE, augment=False)(wave)
    assert torch.equal(raw, wave)
    clean = build_audio_transform("logmel", RATE, n_mels=16, augment=False)
    assert torch.equal(clean(wave), clean(wave))  # no randomness in the eval transform
    with pytest.raises(ValueError, match="kind"):
        build_audio_transform("mfcc")
