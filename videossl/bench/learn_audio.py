"""The audio column of ``videossl bench learn``: the audio tower of an audio-visual run (``encoder_audio.pt``: L3,
AVE-Net, AVID, BraVe V/A, ELo) against the same audio backbone at random initialisation, by a linear probe
(:func:`videossl.eval.audio.run_audio_linear`) on the audio tracks of the synthetic labeled sets, with the run's
audio rate, mel bands and window length. Both results are cached like the video ones (``learn.cached_top1``).
"""
from __future__ import annotations

from pathlib import Path

import torch

from videossl.backbones import create_backbone, save_encoder
from videossl.eval.audio import load_audio_eval_config, run_audio_linear
from videossl.eval.synthetic_protocol import eval_data_overrides

from .learn_cache import backbone_tag, cached_top1, with_num_test

TINY_AUDIO_EVAL = ["data.num_windows=1", "linear.epochs=5", "data.batch_size=4"]
# AudioEvalDataConfig keys the video evaluation's data overrides share with it (the synthetic sets themselves).
AUDIO_SHARED_DATA = ("data.format=", "data.root=", "data.synthetic.", "data.num_workers=", "data.decoder=")
# method hyperparameter of the audio-visual recipes -> the audio evaluation's data key
AUDIO_METHOD_KEYS = (("audio_rate", "audio_rate"), ("n_mels", "n_mels"), ("audio_seconds", "seconds"))


def audio_eval_overrides(cfg, tiny: bool, num_test: int | None = None) -> list[str]:
    """Audio-probe overrides: the synthetic root and sizes of the video evaluation (the quickstart's
    ``eval_data_overrides``, test split resized to ``num_test`` like the video one), the run's audio rate, mel
    bands and window length, the run's seed."""
    data = with_num_test(eval_data_overrides(cfg), num_test)
    shared = [o for o in data if o.startswith(AUDIO_SHARED_DATA)]
    audio = [f"data.{key}={cfg.method[name]}" for name, key in AUDIO_METHOD_KEYS if name in cfg.method]
    return shared + audio + [f"seed={int(cfg.train.seed)}"] + (TINY_AUDIO_EVAL if tiny else [])


def write_random_audio_init(ssl_audio: Path, seed: int, out: Path) -> Path:
    """The audio backbone of ``ssl_audio`` (name and kwargs as saved) at random init, seeded with ``seed``, as
    ``<out>/random-audio-<tag>/encoder_audio.pt`` (rewritten identically on every call, so its cache holds)."""
    payload = torch.load(ssl_audio, map_location="cpu", weights_only=True)
    name, kwargs = payload["backbone"], {k: v for k, v in payload["kwargs"].items() if k != "pretrained"}
    path = out / f"random-audio-{backbone_tag(name, kwargs, seed)}" / "encoder_audio.pt"
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(seed)
    save_encoder(path, create_backbone(name, **kwargs), name, kwargs)
    return path


def bench_audio(cfg, run_dir: Path, tiny: bool, out: Path, num_test: int | None = None) -> dict:
    """Audio linear top-1 of ``<run_dir>/encoder_audio.pt`` and of its random init (both cached) -> row keys;
    every key None when the run has no audio tower."""
    ssl_audio = run_dir / "encoder_audio.pt"
    if not ssl_audio.is_file():
        return {"audio_linear_top1": None, "random_audio_linear_top1": None, "audio_beats_random": None}
    evaluation = audio_eval_overrides(cfg, tiny, num_test)
    eval_dir = out / run_dir.parent.name / "eval-audio"
    ssl = cached_top1(str(ssl_audio), evaluation, eval_dir, eval_dir / "bench_audio_eval.json", audio_top1)
    rand_encoder = write_random_audio_init(ssl_audio, int(cfg.train.seed), out)
    rand = cached_top1(str(rand_encoder), evaluation, rand_encoder.parent, rand_encoder.parent.with_suffix(".json"),
                       audio_top1)
    return {"audio_linear_top1": ssl["linear_top1"], "random_audio_linear_top1": rand["linear_top1"],
            "audio_beats_random": ssl["linear_top1"] > rand["linear_top1"], "audio_num_test": ssl.get("num_test")}


def audio_top1(encoder: str, overrides: list[str], out_dir: Path) -> dict[str, float]:
    """Audio linear-probe top-1 of ``encoder`` (an ``encoder_audio.pt`` path) on the synthetic audio tracks."""
    result = run_audio_linear(load_audio_eval_config(encoder, None, overrides + [f"out_dir={out_dir}"]))
    return {"linear_top1": float(result["top1"]), "num_test": int(result["num_test"]),
            "num_classes": int(result["num_classes"])}
