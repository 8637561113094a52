"""Audio-visual evaluation of a pretraining RUN (its heads are needed, not only ``encoder.pt``): cross-modal
retrieval, synchronisation accuracy and AVE-Net's sound-source localisation PNGs.

    from videossl.eval.av_retrieval import run_av_retrieval, run_av_sync
    run_av_retrieval("runs/avid-...")        # {"v2a_R@1", "v2a_R@5", "v2a_R@10", "a2v_R@1", ...}
    run_av_sync("runs/l3-...", offset_s=1.0) # {"sync_accuracy": .., "chance": 0.5}

Retrieval: each test video gives one clip and the audio at the same time (eval transforms, a deterministic
time per video); every clip queries every audio (video-to-audio) and the reverse, scored by the method's
``pair_scores`` (AVID: cosine of the embeddings; AVE-Net: minus their distance; L3: the correspondence
log-odds; BraVe V/A: the narrow prediction against the audio projection). A query is a hit at k when its own
video's item is among the k best. Chance R@k is k / N.

Synchronisation: the same clips with their synchronised audio and with audio shifted by ``offset_s``; the
accuracy is the fraction of videos whose synchronised pair scores higher (ties count one half; chance 0.5).
"""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Sequence

import torch

from videossl.errors import UserError


def load_run_method(run_dir: str | Path) -> Any:
    """Rebuild the method of a pretraining run from ``config.yaml`` and ``last.ckpt`` (eval mode, CPU)."""
    from videossl.config import load_pretrain_config
    from videossl.engine.checkpoint import load_checkpoint
    from videossl.methods import METHODS

    run = Path(run_dir)
    for name in ("config.yaml", "last.ckpt"):
        if not (run / name).is_file():
            raise UserError(f"{run}: no {name} (give the directory of a pretraining run)")
    cfg = load_pretrain_config(run / "config.yaml")
    cfg.backbone.pretrained = ""  # the checkpoint holds the trained weights; never re-read the init file
    method = METHODS[cfg.method.name](cfg)
    method.load_state_dict(load_checkpoint(run / "last.ckpt")["model"])
    return method.eval()


def av_dataset(method: Any, split: str = "test", audio_offset: float = 0.0, seed: int = 0,
               data_overrides: Sequence[str] = ()) -> Any:
    """A ``VideoDataset`` of (clip, audio) pairs of ``split`` with the method's clip and audio geometry."""
    from omegaconf import OmegaConf

    from videossl.data.video_dataset import VideoDataset
    from videossl.data.sampling import AudioVisualSampler, ViewSpec
    from videossl.transforms.audio import build_audio_transform
    from videossl.transforms.video import build_video_transform

    from .features import read_split

    h = method.hparams
    if not all(hasattr(h, k) for k in ("audio_rate", "audio_seconds", "n_mels")):
        raise UserError(f"{h.name} is not an audio-visual method (no audio settings)")
    # overrides such as "data.root=/x" or "root=/x" replace the run's own data settings
    relative = [o.removeprefix("data.") for o in data_overrides]
    try:
        data = OmegaConf.merge(method.cfg.data, OmegaConf.from_dotlist(relative))
    except Exception as err:
        raise UserError(f"data overrides {list(data_overrides)}: {str(err).splitlines()[0]}") from None
    index = read_split(data, split, int(data.split_id))
    sampler = AudioVisualSampler(num_frames=data.num_frames, stride=data.frame_stride, audio_seconds=h.audio_seconds,
                                 audio_offset=audio_offset)
    transforms = {"clip": build_video_transform("eval", data.crop_size),
                  "audio": build_audio_transform("logmel", h.audio_rate, h.n_mels, augment=False)}
    return VideoDataset(index, ViewSpec(sampler, transforms, h.audio_rate), decoder=data.decoder, seed=seed,
                        short_side=data.crop_size)


def collect_pairs(dataset: Any, max_videos: int = 0, batch_size: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    """Every (clip, audio) of ``dataset`` (the first ``max_videos`` when > 0): ``(N, C, T, H, W)``, ``(N, 1, M, F)``."""
    from torch.utils.data import DataLoader, Subset

    n = len(dataset) if max_videos <= 0 else min(max_videos, len(dataset))
    clips, audio = [], []
    for batch in DataLoader(Subset(dataset, range(n)), batch_size=batch_size, shuffle=False):
        clips.append(batch["video"][0])
        audio.append(batch["audio"][0])
    return torch.cat(clips), torch.cat(audio)


@torch.no_grad()
def score_matrix(method: Any, clips: torch.Tensor, audio: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """``(N, N)`` ``method.pair_scores`` of every clip (rows) with every audio (columns), ``chunk`` rows at a time."""
    return torch.cat([method.pair_scores(clips[i:i + chunk], audio) for i in range(0, len(clips), chunk)])


def cross_modal_recall(scores: torch.Tensor, ks: Sequence[int] = (1, 5, 10)) -> dict[str, float]:
    """Recall@k both ways for a square ``(N, N)`` score matrix whose matching pairs lie on the diagonal.

    ``v2a``: row i (a clip) ranks the columns (audio); ``a2v``: column j ranks the rows. A tie with the true item
    counts against it (strictly better items are counted as ahead, ties too), so constant scores get R@1 = 0.
    """
    if scores.ndim != 2 or scores.shape[0] != scores.shape[1]:
        raise ValueError(f"cross_modal_recall: expected a square score matrix, got {tuple(scores.shape)}")
    n = scores.shape[0]
    true = scores.diagonal()
    eye = torch.eye(n, dtype=torch.bool, device=scores.device)
    ahead_v2a = ((scores >= true[:, None]) & ~eye).sum(dim=1)  # items ranked at least as high as the true one
    ahead_a2v = ((scores >= true[None, :]) & ~eye).sum(dim=0)
    out = {}
    for k in ks:
        out[f"v2a_R@{k}"] = float((ahead_v2a < k).float().mean())
        out[f"a2v_R@{k}"] = float((ahead_a2v < k).float().mean())
    return out


def run_av_retrieval(run_dir: str | Path, split: str = "test", max_videos: int = 0, seed: int = 0,
                     data_overrides: Sequence[str] = (), out_dir: str | Path | None = None) -> dict[str, Any]:
    """Video-to-audio and audio-to-video R@1/5/10 of a run on ``split``; writes ``av_retrieval.json`` to ``out_dir``."""
    method = load_run_method(run_dir)
    clips, audio = collect_pairs(av_dataset(method, split, seed=seed, data_overrides=data_overrides), max_videos)
    result: dict[str, Any] = {**cross_modal_recall(score_matrix(method, clips, audio)), "num_videos": len(clips),
                              "chance_R@1": 1.0 / len(clips), "method": method.hparams.name}
    _write(result, out_dir, "av_retrieval.json")
    print("audio-visual retrieval (" + ", ".join(f"{k} {100 * v:.1f}" for k, v in result.items()
                                                 if "R@" in k and not k.startswith("chance")) + f"; {len(clips)} videos)")
    return result


@torch.no_grad()
def sync_accuracy(method: Any, synced: tuple[torch.Tensor, torch.Tensor], offset: torch.Tensor, chunk: int = 32) -> float:
    """Fraction of clips whose synchronised audio scores higher than the offset audio (ties: one half).

    synced: ``(clips, audio)``; offset: the audio of the same clips shifted in time, ``(N, 1, M, F)``.
    """
    clips, audio = synced
    wins = []
    for i in range(0, len(clips), chunk):
        c = clips[i:i + chunk]
        both = method.pair_scores(c, torch.cat([audio[i:i + chunk], offset[i:i + chunk]]))  # (b, 2b)
        b = len(c)
        s_sync, s_off = both[:, :b].diagonal(), both[:, b:].diagonal()
        wins.append((s_sync > s_off).float() + 0.5 * (s_sync == s_off).float())
    return float(torch.cat(wins).mean())


def run_av_sync(run_dir: str | Path, offset_s: float = 1.0, split: str = "test", max_videos: int = 0, seed: int = 0,
                data_overrides: Sequence[str] = (), out_dir: str | Path | None = None) -> dict[str, Any]:
    """Synchronised vs ``offset_s``-shifted audio for the same clips (same seed: the same clip times)."""
    if offset_s == 0:
        raise UserError("--offset must be non-zero (the shift of the negative audio in seconds)")
    method = load_run_method(run_dir)
    synced = collect_pairs(av_dataset(method, split, 0.0, seed, data_overrides), max_videos)
    _, shifted = collect_pairs(av_dataset(method, split, offset_s, seed, data_overrides), max_videos)
    accuracy = sync_accuracy(method, synced, shifted)
    result = {"sync_accuracy": accuracy, "chance": 0.5, "offset_s": offset_s, "num_videos": len(shifted),
              "method": method.hparams.name}
    _write(result, out_dir, "av_sync.json")
    print(f"synchronisation: {100 * accuracy:.1f}% of {len(shifted)} clips prefer their synchronised audio over audio "
          f"shifted by {offset_s:+.2f} s (chance 50%)")
    return result


def run_av_localise(run_dir: str | Path, out_dir: str | Path, num_videos: int = 8, split: str = "test",
                    seed: int = 0, data_overrides: Sequence[str] = ()) -> list[Path]:
    """AVE-Net sound-source localisation: PNG overlays of ``num_videos`` test clips under ``out_dir``."""
    from videossl.methods.avenet import save_localisation_overlays

    method = load_run_method(run_dir)
    if not hasattr(method, "localisation_maps"):
        raise UserError(f"{run_dir}: localisation maps need an avenet run, this is {method.hparams.name}")
    dataset = av_dataset(method, split, seed=seed, data_overrides=data_overrides)
    clips, audio = collect_pairs(dataset, num_videos)
    maps = method.localisation_maps(clips, audio)
    names = [f"{k:03d}_{Path(dataset.index.entries[k].path).stem}" for k in range(len(clips))]
    paths = save_localisation_overlays(clips, maps, out_dir, names)
    print(f"wrote {len(paths)} localisation overlays to {out_dir}")
    return paths


def _write(result: dict, out_dir: str | Path | None, name: str) -> None:
    if out_dir:
        out = Path(out_dir)
        out.mkdir(parents=True, exist_ok=True)
        (out / name).write_text(json.dumps(result, indent=2))
