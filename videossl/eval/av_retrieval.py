"""Audio-visual evaluation of a pretraining RUN from the files it saved (``SavedAVModel``: ``encoder.pt``,
``encoder_audio.pt`` and the pair head, ``encoder_avc_head.pt`` of L3 / AVE-Net or ``encoder_av_head.pt`` of AVID /
BraVe V/A; no method class): cross-modal retrieval, synchronisation accuracy and AVE-Net's sound-source localisation
PNGs. Only a run written before ``encoder_av_head.pt`` existed (AVID, BraVe V/A) has its method rebuilt from
``last.ckpt`` (``RunMethodAVModel``), so old runs still evaluate.

    from videossl.eval.av_retrieval import run_av_retrieval, run_av_sync
    run_av_retrieval("runs/avid-...")        # {"v2a_R@1", "v2a_R@5", "v2a_R@10", "a2v_R@1", ...}
    run_av_sync("runs/l3-...", offset_s=1.0) # {"sync_accuracy": .., "chance": 0.5}

Retrieval: each test video gives one clip and the audio at the same time (eval transforms, a deterministic
time per video); every clip queries every audio (video-to-audio) and the reverse, scored by the pair head's
``pair_scores`` (AVID: cosine of the embeddings; AVE-Net: minus their distance; L3: the correspondence
log-odds; BraVe V/A: the narrow prediction against the audio projection). A query is a hit at k when its own
video's item is among the k best. Chance R@k is k / N.

Synchronisation: one clip per test video with its synchronised audio and the audio ``|offset_s|`` before or after
it (``SyncPairSampler``: the clip is placed where both windows lie inside the file, so the offset audio really is
offset; an audio window clamped at the end of the file would otherwise overlap, or equal, the synchronised one);
the accuracy is the fraction of videos whose synchronised pair scores higher (ties count one half; chance 0.5).
Videos too short for the full offset get the largest shift that fits; ``num_short`` counts those pairs.
Clips of one video are correlated, so the standard error and the one-sided bound treat each video as one unit
(``video_clustered_bound``); ``informative_accuracy`` is the accuracy on the pairs whose two audio windows differ
at all (``audio_windows_differ``): on pairs of silent or steadily humming videos every model is at chance.
"""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from omegaconf import OmegaConf
from torch import nn
from torch.utils.data import DataLoader, Subset

from videossl.backbones import load_encoder
from videossl.config import load_pretrain_config, merge_into_schema, read_yaml
from videossl.data.build import dataset_from_index
from videossl.data.config import DataConfig
from videossl.data.sampling import (AudioVisualSampler, ClipSampler, SampledViews, VideoMeta, ViewSpec, audio_view,
                                    audio_window, clip_indices, clip_span, frames_to_time, segment_frames, video_view)
from videossl.data.video_dataset import collate_readable
from videossl.engine.checkpoint import load_checkpoint
from videossl.errors import UserError
from videossl.heads import AV_PAIR_HEADS
from videossl.methods import METHODS
from videossl.pictures import save_localisation_overlays
from videossl.transforms.audio import build_audio_transform
from videossl.transforms.video import build_video_transform

from .avc import load_avc_head
from .features import read_split
from .report import write_json

log = logging.getLogger("videossl.eval")
PAIR_HEAD_FILES = ("encoder_avc_head.pt", "encoder_av_head.pt")  # L3 / AVE-Net, AVID / BraVe V/A
AUDIO_DEFAULTS = {"audio_rate": 16000, "audio_seconds": 1.0, "n_mels": 64}


class SavedAVModel(nn.Module):
    """An audio-visual run as it saved itself: the video tower (``encoder.pt``), the audio tower
    (``encoder_audio.pt``) and the pair head (``encoder_avc_head.pt`` of L3 / AVE-Net, ``encoder_av_head.pt`` of
    AVID / BraVe V/A; ``heads.AV_PAIR_HEADS``). ``pair_scores`` / ``localisation_maps`` take clips ``(N, C, T, H, W)`` and log-mel
    audio ``(M, 1, n_mels, frames)`` as the method's own did; ``data`` is the run's data section."""

    def __init__(self, video: nn.Module, audio: nn.Module, head: nn.Module, name: str, data: Any):
        super().__init__()
        self.video, self.audio_tower, self.head, self.name, self.data = video, audio, head, name, data
        self.geometry = {**AUDIO_DEFAULTS, **dict(getattr(head, "audio", {}) or {})}

    @torch.no_grad()
    def pair_scores(self, clips: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """``(Nv, Na)`` correspondence scores (higher = more likely the same moment of the same video)."""
        return self.head.pair_scores(self.video(clips), self.audio_tower(audio))

    @torch.no_grad()
    def localisation_maps(self, clips: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """``(B, h, w)`` AVE-Net sound-source maps of ``B`` clips and their audio (``heads.AVENetHead``)."""
        if not hasattr(self.head, "localisation_maps"):
            raise UserError(f"localisation maps need an avenet run, this is {self.name}")
        tokens = self.video.forward_tokens(clips)
        if tokens.dim() != 5:
            raise UserError(f"avenet localisation needs a convolutional backbone ((B, D, t, h, w) tokens); the saved "
                            f"video tower gives {tuple(tokens.shape)}")
        return self.head.localisation_maps(tokens, self.audio_tower(audio))


class RunMethodAVModel(nn.Module):
    """The same interface on a method rebuilt from ``last.ckpt``: only for runs written before AVID and BraVe V/A
    saved ``encoder_av_head.pt``."""

    def __init__(self, method: nn.Module):
        super().__init__()
        h = method.hparams
        self.method, self.name, self.data = method, str(h.name), method.cfg.data
        if not all(hasattr(h, k) for k in AUDIO_DEFAULTS):
            raise UserError(f"{h.name} is not an audio-visual method (no audio settings)")
        self.geometry = {k: getattr(h, k) for k in AUDIO_DEFAULTS}

    def pair_scores(self, clips: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        return self.method.pair_scores(clips, audio)

    def localisation_maps(self, clips: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        if not hasattr(self.method, "localisation_maps"):
            raise UserError(f"localisation maps need an avenet run, this is {self.name}")
        return self.method.localisation_maps(clips, audio)


def load_av_model(run_dir: str | Path) -> nn.Module:
    """The towers and pair head a pretraining run saved (``SavedAVModel``, eval mode, CPU); a run without a pair
    head file falls back to rebuilding its method from ``config.yaml`` + ``last.ckpt`` (``RunMethodAVModel``)."""
    run = Path(run_dir)
    if not (run / "config.yaml").is_file():
        raise UserError(f"{run}: no config.yaml (give the directory of an audio-visual pretraining run)")
    head_path = next((run / name for name in PAIR_HEAD_FILES if (run / name).is_file()), None)
    if head_path is None:
        return RunMethodAVModel(load_run_method(run)).eval()
    for name in ("encoder.pt", "encoder_audio.pt"):
        if not (run / name).is_file():
            raise UserError(f"{run}: {name} not found next to {head_path.name} (an interrupted run?)")
    head = load_avc_head(head_path, AV_PAIR_HEADS)
    video, audio = load_encoder(run / "encoder.pt"), load_encoder(run / "encoder_audio.pt")
    data = merge_into_schema(DataConfig(), (read_yaml(run / "config.yaml").get("data", {}), str(run / "config.yaml")))
    name = str(OmegaConf.select(read_yaml(run / "config.yaml"), "method.name", default="") or head_path.stem)
    return SavedAVModel(video, audio, head, name, data).eval()


def load_run_method(run_dir: str | Path) -> Any:
    """Rebuild the method of a pretraining run from ``config.yaml`` and ``last.ckpt`` (eval mode, CPU)."""
    run = Path(run_dir)
    if not (run / "last.ckpt").is_file():
        raise UserError(f"{run}: no pair head file ({' / '.join(PAIR_HEAD_FILES)}) and no last.ckpt (give the directory "
                        f"of an audio-visual pretraining run)")
    cfg = load_pretrain_config(run / "config.yaml", hardware=False)  # a GPU run evaluates on a CPU machine too
    cfg.backbone.pretrained = ""  # the checkpoint holds the trained weights; never re-read the init file
    method = METHODS[cfg.method.name](cfg)
    method.load_state_dict(load_checkpoint(run / "last.ckpt")["model"])
    return method.eval()


def av_dataset(model: Any, split: str = "test", audio_offset: float = 0.0, seed: int = 0,
               data_overrides: Sequence[str] = (), sync_offset_s: float = 0.0) -> Any:
    """A ``VideoDataset`` of (clip, audio) pairs of ``split`` with the run's clip and audio geometry; with
    ``sync_offset_s`` the samples are ``SyncPairSampler`` triples (clip, synchronised audio, offset audio). An
    unreadable video yields ``None`` (left out by ``collect_pairs``), never another video."""
    g = model.geometry
    # overrides such as "data.root=/x" or "root=/x" replace the run's own data settings
    relative = [o.removeprefix("data.") for o in data_overrides]
    try:
        data = OmegaConf.merge(model.data, OmegaConf.from_dotlist(relative))
    except Exception as err:
        raise UserError(f"data overrides {list(data_overrides)}: {str(err).splitlines()[0]}") from None
    index = read_split(data, split, int(data.split_id))
    if sync_offset_s:
        sampler = SyncPairSampler(data.num_frames, data.frame_stride, g["audio_seconds"], sync_offset_s)
    else:
        sampler = AudioVisualSampler(num_frames=data.num_frames, stride=data.frame_stride,
                                     audio_seconds=g["audio_seconds"], audio_offset=audio_offset)
    transforms = {"clip": build_video_transform("eval", data.crop_size),
                  "audio": build_audio_transform("logmel", g["audio_rate"], g["n_mels"], augment=False)}
    return dataset_from_index(data, index, ViewSpec(sampler, transforms, g["audio_rate"]), seed=seed,
                              short_side=int(data.crop_size), replace_unreadable=False)


def collect_pairs(dataset: Any, max_videos: int = 0, batch_size: int = 16, items: Sequence[Any] | None = None
                  ) -> dict[str, torch.Tensor]:
    """Every readable sample of ``dataset`` (its first ``max_videos`` videos when > 0, or the keys ``items``):
    ``{"clips": (N, C, T, H, W), "audio": [(N, 1, M, F) per audio view], "index": (N,) the video of each,
    **targets}``. Unreadable videos are left out and logged (bad_files lists them)."""
    n = len(dataset) if max_videos <= 0 else min(max_videos, len(dataset))
    keys = list(items) if items is not None else list(range(n))
    parts: dict[str, list] = {}
    for batch in DataLoader(Subset(dataset, keys), batch_size=batch_size, shuffle=False, collate_fn=collate_readable):
        if batch is None:
            continue
        for key, value in (("clips", batch["video"][0]), ("index", torch.as_tensor(batch["index"]).long()),
                           *((f"audio{k}", a) for k, a in enumerate(batch["audio"])),
                           *((k, v) for k, v in batch.items() if k not in ("video", "audio", "index", "label"))):
            parts.setdefault(key, []).append(value)
    if not parts:
        raise UserError(f"none of the {n} videos could be read (see `videossl data check`)")
    out = {key: torch.cat([torch.as_tensor(v) for v in values]) for key, values in parts.items()}
    left_out = len(keys) - len(out["index"])
    if left_out:
        log.warning("audio-visual pairs: %d of %d samples left out (unreadable videos; not replaced)", left_out, len(keys))
    return out


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
    model = load_av_model(run_dir)
    pairs = collect_pairs(av_dataset(model, split, seed=seed, data_overrides=data_overrides), max_videos)
    clips, audio = pairs["clips"], pairs["audio0"]
    result: dict[str, Any] = {**cross_modal_recall(score_matrix(model, clips, audio)), "num_videos": len(clips),
                              "chance_R@1": 1.0 / len(clips), "method": model.name}
    _write(result, out_dir, "av_retrieval.json")
    print("audio-visual retrieval (" + ", ".join(f"{k} {100 * v:.1f}" for k, v in result.items()
                                                 if "R@" in k and not k.startswith("chance")) + f"; {len(clips)} videos)")
    return result


class SyncPairSampler(ClipSampler):
    """A clip, its synchronised audio (``audio0``) and the audio ``offset_s`` away from it (``audio_offset``).

    Both audio windows are ``audio_seconds`` long. The clip is drawn uniformly among the positions where the
    synchronised window is centred on it and the offset window, ``offset_s`` before or after (a random side when
    both fit), lies inside the file too. A video too short for that takes the position with the largest shift
    that fits (``audio_window`` clamps at the ends). Target ``sync_shift_s``: the shift really obtained (signed).
    """

    def __init__(self, num_frames: int, stride: int, audio_seconds: float, offset_s: float):
        if offset_s == 0 or audio_seconds <= 0:
            raise UserError(f"sync pairs need a non-zero offset and audio_seconds > 0, got {offset_s}, {audio_seconds}")
        self.num_frames, self.stride = num_frames, stride
        self.audio_seconds, self.offset_s = audio_seconds, abs(offset_s)

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        first, stop = segment_frames(meta)
        half = self.audio_seconds / 2
        exact, fallback = [], []  # (clip indices, synchronised window, offset window, shift)
        for start in range(first, max(first, stop - clip_span(self.num_frames, self.stride)) + 1):
            indices = clip_indices(start, self.num_frames, self.stride, first, stop)
            centre = sum(frames_to_time(meta, indices)) / 2
            synced = audio_window(meta, centre, self.audio_seconds)
            for sign in (1.0, -1.0):
                shifted = audio_window(meta, centre + sign * self.offset_s, self.audio_seconds)
                shift = shifted[0] - synced[0]
                option = (indices, synced, shifted, shift)
                if abs(synced[0] - (centre - half)) < 1e-6 and abs(shift - sign * self.offset_s) < 1e-6:
                    exact.append(option)
                fallback.append(option)
        if not exact:
            widest = max(abs(o[3]) for o in fallback)
            exact = [o for o in fallback if abs(o[3]) >= widest - 1e-6]
        indices, synced, shifted, shift = exact[int(rng.integers(len(exact)))]
        views = [video_view("clip0", indices, "clip"), audio_view("audio0", synced), audio_view("audio_offset", shifted)]
        return SampledViews(views, {"sync_shift_s": float(shift)})


@torch.no_grad()
def sync_wins(method: Any, synced: tuple[torch.Tensor, torch.Tensor], offset: torch.Tensor, chunk: int = 32) -> torch.Tensor:
    """``(N,)``: 1 where a clip's synchronised audio scores higher than its offset audio, 0 where lower, 0.5 on a tie.

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
    return torch.cat(wins)


def sync_accuracy(method: Any, synced: tuple[torch.Tensor, torch.Tensor], offset: torch.Tensor, chunk: int = 32) -> float:
    """Fraction of clips whose synchronised audio scores higher than the offset audio (ties: one half)."""
    return float(sync_wins(method, synced, offset, chunk).mean())


def audio_windows_differ(synced: torch.Tensor, offset: torch.Tensor, band_db: float = 4.0) -> torch.Tensor:
    """``(N,)`` bool, judged from the audio alone: does some mel band's average level differ by more than
    ``band_db`` between the two log-mel windows ``(N, 1, M, F)`` (in dB)? On the synthetic dataset this marks the
    pairs where an impact, a swoosh or a fading hum falls in one window only; the two windows of a silent or
    steadily humming video differ by 1-2 dB (noise), and no model can tell those pairs apart."""
    return (synced.mean(dim=-1) - offset.mean(dim=-1)).abs().flatten(1).amax(dim=1) > band_db


def video_clustered_bound(wins: torch.Tensor, video: torch.Tensor, z: float = 2.326) -> dict[str, float]:
    """Accuracy with a standard error that treats each video's clips as one correlated unit.

    wins ``(N,)`` in {0, 0.5, 1}; video ``(N,)`` the video of each pair. The per-video mean win is the unit of a
    one-sample test against 0.5 (clips of one video share its class and scene, so they are not independent):
    ``se`` = std of the per-video means / sqrt(videos); ``lower`` = accuracy - ``z`` se (z 2.326: a one-sided
    99% bound); ``p`` the one-sided normal p-value of accuracy > 0.5."""
    ids, inverse = torch.unique(video, return_inverse=True)
    per_video = torch.zeros(len(ids)).index_add_(0, inverse, wins.float()) / torch.bincount(inverse).float()
    mean = float(per_video.mean())
    se = float(per_video.std(unbiased=True) / math.sqrt(len(ids))) if len(ids) > 1 else float("inf")
    p = 0.5 * math.erfc((mean - 0.5) / (se * math.sqrt(2))) if se > 0 else float(mean <= 0.5)
    return {"se": se, "lower": mean - z * se, "p": p, "num_videos": len(ids)}


def run_av_sync(run_dir: str | Path, offset_s: float = 1.0, split: str = "test", max_videos: int = 0, seed: int = 0,
                data_overrides: Sequence[str] = (), out_dir: str | Path | None = None,
                clips_per_video: int = 1) -> dict[str, Any]:
    """Synchronised vs ``|offset_s|``-shifted audio for ``clips_per_video`` clips of each video of ``split`` (each
    at its own random time, ``SyncPairSampler``); ``num_pairs`` = videos x clips.

    Besides ``sync_accuracy``: ``sync_se`` / ``sync_lower_99`` / ``sync_p`` (``video_clustered_bound``: each video's
    clips as one unit), and ``informative_accuracy`` over the ``num_informative`` pairs whose two audio windows
    differ (``audio_windows_differ``), an extra number, never a replacement for the overall one."""
    if offset_s == 0:
        raise UserError("--offset must be non-zero (the shift of the negative audio in seconds)")
    model = load_av_model(run_dir)
    dataset = av_dataset(model, split, seed=seed, data_overrides=data_overrides, sync_offset_s=offset_s)
    if clips_per_video < 1:
        raise UserError(f"clips_per_video must be >= 1, got {clips_per_video}")
    n = len(dataset) if max_videos <= 0 else min(max_videos, len(dataset))
    items = [(i, draw) for draw in range(clips_per_video) for i in range(n)]  # (index, epoch): another clip time
    pairs = collect_pairs(dataset, items=items)
    clips, synced, shifted, shifts = pairs["clips"], pairs["audio0"], pairs["audio1"], pairs["sync_shift_s"]
    wins = sync_wins(model, (clips, synced), shifted)
    accuracy = float(wins.mean())
    bound = video_clustered_bound(wins, pairs["index"])
    informative = audio_windows_differ(synced, shifted)
    num_short = int((shifts.abs() < abs(offset_s) - 1e-6).sum())
    result = {"sync_accuracy": accuracy, "chance": 0.5, "offset_s": abs(offset_s), "num_videos": bound["num_videos"],
              "num_pairs": len(clips), "num_short": num_short, "sync_se": bound["se"], "sync_lower_99": bound["lower"],
              "sync_p": bound["p"], "num_informative": int(informative.sum()),
              "informative_accuracy": float(wins[informative].mean()) if informative.any() else float("nan"),
              "method": model.name}
    _write(result, out_dir, "av_sync.json")
    print(f"synchronisation: {100 * accuracy:.1f}% of {len(clips)} clips ({bound['num_videos']} videos) prefer their synchronised audio over audio "
          f"{abs(offset_s):.2f} s before or after (chance 50%; +- {100 * bound['se']:.1f} with each video's clips as one unit, "
          f"one-sided p {bound['p']:.2g}); {100 * result['informative_accuracy']:.1f}% of the {result['num_informative']} "
          "pairs whose two audio windows differ"
          + (f"; {num_short} pairs, of videos too short for that offset, got a smaller shift" if num_short else ""))
    return result


def run_av_localise(run_dir: str | Path, out_dir: str | Path, num_videos: int = 8, split: str = "test",
                    seed: int = 0, data_overrides: Sequence[str] = ()) -> list[Path]:
    """AVE-Net sound-source localisation: PNG overlays of ``num_videos`` test clips under ``out_dir``, from the
    run's saved towers and ``encoder_avc_head.pt`` (``heads.AVENetHead.localisation_maps``)."""
    model = load_av_model(run_dir)
    dataset = av_dataset(model, split, seed=seed, data_overrides=data_overrides)
    pairs = collect_pairs(dataset, num_videos)
    maps = model.localisation_maps(pairs["clips"], pairs["audio0"])
    clips = pairs["clips"]
    names = [f"{k:03d}_{Path(dataset.index.entries[k].path).stem}" for k in pairs["index"].tolist()]
    paths = save_localisation_overlays(clips, maps, out_dir, names)
    print(f"wrote {len(paths)} localisation overlays to {out_dir}")
    return paths


def _write(result: dict, out_dir: str | Path | None, name: str) -> None:
    if out_dir:
        out = Path(out_dir)
        write_json(out / name, result)  # atomic; a read-only out_dir is one line
