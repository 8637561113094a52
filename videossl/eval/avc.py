"""Held-out audio-visual correspondence (AVC) accuracy: L3's headline metric (Arandjelovic & Zisserman, ICCV 2017).

    videossl eval avc eval/avc_kinetics_sounds runs/l3-ks/encoder.pt data.root=/data/kinetics400
    videossl eval avc runs/avenet-x data.format=synthetic                      # a run directory works too

Pairs: every held-out video gives ``pairs_per_video`` clips at random times (seeded); each clip makes a
POSITIVE with the audio of the same time of the same video (``AudioVisualSampler``: ``audio_seconds`` centred on
the clip) and a NEGATIVE with the audio of a pair drawn uniformly from the OTHER videos, so the pairs are exactly
balanced and chance is 50%. A pair is called "corresponds" when the correspondence head's logit for class 1 beats
class 0 (L3's softmax decision); accuracy is over all 2N pairs.

Evaluation reads saved artefacts only: ``encoder.pt`` (video tower, with its clip geometry), ``encoder_audio.pt``
(audio tower) and ``encoder_avc_head.pt`` (the correspondence head: L3's fusion MLP or AVE-Net's embedding
distance, ``AVC_HEADS``; it records the audio rate / seconds / mel bands the towers were trained with). No method
class is built. AVID-style runs have no such head: use ``videossl eval av-retrieval``.

Standard error: ``se`` is the binomial SE over the 2N pairs, sqrt(p (1 - p) / 2N); since a video's positive and
negative share its clip, ``se_video`` also treats each video's pairs as one unit (std of per-video accuracy /
sqrt(videos)), the more conservative of the two when they differ.
"""
from __future__ import annotations

import logging
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Optional

import numpy as np
import torch
from torch.utils.data import DataLoader, Subset

from videossl.backbones import encoder_clip, load_encoder
from videossl.config import load_config
from videossl.data.bad_files import bad_files
from videossl.data.build import build_index, dataset_from_index
from videossl.data.config import DataSourceConfig
from videossl.data.sampling import AudioVisualSampler, ViewSpec
from videossl.data.video_dataset import collate_readable
from videossl.errors import UserError
from videossl.heads import AVC_HEADS, L3FusionHead
from videossl.reference import ReferenceConfig
from videossl.transforms.audio import build_audio_transform
from videossl.transforms.video import VIDEO_MEAN, VIDEO_STD, build_video_transform

from .commands import add_arguments as add_eval_arguments
from .commands import split_recipe_and_encoder
from .config import DEFAULT_CLIP, resolve_eval_recipe
from .features import resolve_device
from .frozen import report_skipped_files
from .report import write_json

log = logging.getLogger("videossl.eval")

@dataclass
class AVCDataConfig(DataSourceConfig):
    """Held-out videos and how pairs are cut: the data layer's ``DataSourceConfig`` (read by
    ``videossl.data.build``) with what this protocol changes. Clip geometry left null is the encoder's
    (``encoder.pt``), audio settings left null are the head's (``encoder_avc_head.pt``); ``short_side`` 0 decodes at
    the crop size."""

    split: str = "test"  # synthetic: test; Kinetics(-Sounds): val (the labelled held-out CSV)
    decoder: str = "pyav"  # audio and video from one container
    num_frames: Optional[int] = None
    frame_stride: Optional[int] = None
    crop_size: Optional[int] = None
    num_workers: int = 0
    split_id: int = 1
    audio_rate: Optional[int] = None
    audio_seconds: Optional[float] = None
    n_mels: Optional[int] = None
    max_videos: int = 0  # 0: every video of the split
    batch_size: int = 16


@dataclass
class AVCEvalConfig:
    encoder: str = ""  # encoder.pt of an L3 / AVE-Net run, or the run directory
    audio_encoder: str = ""  # "": encoder_audio.pt next to the encoder
    head: str = ""  # "": encoder_avc_head.pt next to the encoder
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)  # the protocol's paper and code
    data: AVCDataConfig = field(default_factory=AVCDataConfig)
    pairs_per_video: int = 1  # clip times per video; each gives one positive and one negative
    seed: int = 0
    device: str = "auto"
    out_dir: str = ""  # avc.json goes here when set


def load_avc_config(encoder: str, recipe: str | None = None, overrides: list[str] | None = None) -> Any:
    """``AVCEvalConfig`` from an optional recipe (path or ``eval/<name>``), ``a.b=value`` overrides, then
    ``encoder``; ``load_config`` range-checks every setting (``videossl.config_checks``)."""
    path = resolve_eval_recipe(recipe) if recipe else None
    return load_config(AVCEvalConfig, path, list(overrides or []) + [f"encoder={encoder}"])


def resolve_artefacts(cfg: Any) -> tuple[Path, Path, Path]:
    """``(encoder.pt, encoder_audio.pt, encoder_avc_head.pt)``: a run directory or an ``encoder.pt`` whose
    siblings are the audio tower and the head, unless ``audio_encoder`` / ``head`` name other files."""
    given = Path(cfg.encoder).expanduser()
    video = given / "encoder.pt" if given.is_dir() else given
    folder = video.parent
    audio = Path(cfg.audio_encoder).expanduser() if cfg.audio_encoder else folder / "encoder_audio.pt"
    head = Path(cfg.head).expanduser() if cfg.head else folder / "encoder_avc_head.pt"
    for what, path in (("encoder", video), ("audio_encoder", audio)):
        if not path.is_file():
            raise UserError(f"{what}: {path} not found (give the encoder.pt of an L3 / AVE-Net run, or its directory)")
    if not head.is_file():
        raise UserError(f"head: {head} not found: AVC accuracy needs the correspondence head that L3 and AVE-Net runs "
                        f"save as encoder_avc_head.pt (runs without one: `videossl eval av-retrieval`)")
    return video, audio, head


def load_avc_head(path: str | Path, heads: dict[str, type[torch.nn.Module]] = AVC_HEADS) -> torch.nn.Module:
    """Rebuild the head saved as ``encoder_avc_head.pt`` (``weights_only``; its ``backbone`` names a ``heads`` entry,
    ``kwargs`` its constructor arguments); ``heads=AV_PAIR_HEADS`` also reads AVID's ``encoder_av_head.pt``."""
    try:
        payload = torch.load(Path(path), map_location="cpu", weights_only=True)
    except Exception as err:
        raise UserError(f"head: cannot read {path}: {type(err).__name__}: {str(err).splitlines()[0][:160]}") from None
    if not isinstance(payload, dict) or payload.get("backbone") not in heads:
        name = payload.get("backbone") if isinstance(payload, dict) else None
        raise UserError(f"head: {path} is not a head file of this protocol (head {name!r}; known: {', '.join(heads)})")
    head = heads[payload["backbone"]](**payload["kwargs"])
    try:
        head.load_state_dict(payload["state_dict"])
    except RuntimeError as err:
        raise UserError(f"head: {path}: weights do not fit ({str(err).splitlines()[0][:160]})") from None
    return head.eval()


def load_towers(cfg: Any) -> tuple[torch.nn.Module, torch.nn.Module, torch.nn.Module, dict[str, Any]]:
    """(video encoder, audio encoder, head, clip record of encoder.pt); the head's input sizes are checked."""
    video_path, audio_path, head_path = resolve_artefacts(cfg)
    video, audio = load_encoder(video_path).eval(), load_encoder(audio_path).eval()
    if getattr(audio, "modality", "video") != "audio" or getattr(video, "modality", "video") == "audio":
        raise UserError(f"encoder / audio_encoder: expected a video tower and an audio tower, got "
                        f"{getattr(video, 'modality', 'video')} and {getattr(audio, 'modality', 'video')}")
    head = load_avc_head(head_path)
    first = head[0] if isinstance(head, L3FusionHead) else None
    expected = (first.in_features if first is not None else head.video_head[0].in_features + head.audio_head[0].in_features)
    if video.num_features + audio.num_features != expected:
        raise UserError(f"head: {head_path} takes {expected} features, the towers give "
                        f"{video.num_features} + {audio.num_features}: they are not from the same run")
    return video, audio, head, encoder_clip(video_path)


def read_held_out(data: Any) -> Any:
    """The ``DatasetIndex`` of the held-out split, through the data layer (synthetic: the cached set's ``test``)."""
    return build_index(data, str(data.split), int(data.split_id))


def pair_dataset(index: Any, cfg: Any, clip: dict[str, Any], audio_geometry: dict[str, Any]) -> Any:
    """A ``VideoDataset`` of (clip, audio of the same time) with eval transforms."""
    d = cfg.data
    frames = int(d.num_frames or clip.get("num_frames", DEFAULT_CLIP["num_frames"]))
    stride = int(d.frame_stride or clip.get("frame_stride", DEFAULT_CLIP["frame_stride"]))
    crop = int(d.crop_size or clip.get("crop_size", DEFAULT_CLIP["crop_size"]))
    sampler = AudioVisualSampler(num_frames=frames, stride=stride, audio_seconds=audio_geometry["audio_seconds"])
    transforms = {"clip": build_video_transform("eval", crop, mean=clip.get("mean", VIDEO_MEAN),
                                                std=clip.get("std", VIDEO_STD)),
                  "audio": build_audio_transform("logmel", audio_geometry["audio_rate"], audio_geometry["n_mels"],
                                                 augment=False)}
    return dataset_from_index(d, index, ViewSpec(sampler, transforms, audio_geometry["audio_rate"]), seed=int(cfg.seed),
                              short_side=int(d.short_side) or crop, replace_unreadable=False)


def negative_partners(videos: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """For each pair, another pair drawn uniformly among those of a DIFFERENT video (its audio is the negative)."""
    if len(np.unique(videos)) < 2:
        raise UserError("AVC needs at least two held-out videos (negatives are audio of another video)")
    partners = np.empty(len(videos), dtype=np.int64)
    for k, video in enumerate(videos):
        others = np.flatnonzero(videos != video)
        partners[k] = others[int(rng.integers(len(others)))]
    return partners


def avc_standard_errors(correct: np.ndarray, videos: np.ndarray) -> dict[str, float]:
    """``correct`` (2N,) 0/1 over all pairs and the video of each pair -> accuracy, binomial SE over pairs and the
    SE with each video's pairs as one unit."""
    p, n = float(correct.mean()), len(correct)
    ids, inverse = np.unique(videos, return_inverse=True)
    per_video = np.bincount(inverse, weights=correct) / np.bincount(inverse)
    se_video = float(per_video.std(ddof=1) / math.sqrt(len(ids))) if len(ids) > 1 else float("inf")
    return {"accuracy": p, "se": math.sqrt(p * (1 - p) / n), "se_video": se_video}


@torch.no_grad()
def run_avc(cfg: Any) -> dict[str, Any]:
    """Held-out AVC accuracy of the towers and head ``cfg`` names (see the module docstring); writes avc.json. An
    unreadable video is left out (never replaced by another), listed in ``skipped_unreadable`` and bad_files.csv."""
    device = resolve_device(cfg.device)
    video_enc, audio_enc, head, clip = load_towers(cfg)
    geometry = {**{"audio_rate": 16000, "audio_seconds": 1.0, "n_mels": 64}, **dict(getattr(head, "audio", {}))}
    for key in geometry:
        if cfg.data[key] is not None:
            geometry[key] = type(geometry[key])(cfg.data[key])
    index = read_held_out(cfg.data)
    n = len(index.entries) if cfg.data.max_videos <= 0 else min(int(cfg.data.max_videos), len(index.entries))
    dataset = pair_dataset(index, cfg, clip, geometry)
    items = [(i, draw) for draw in range(int(cfg.pairs_per_video)) for i in range(n)]  # (video, epoch): a clip time
    loader = DataLoader(Subset(dataset, items), batch_size=int(cfg.data.batch_size), shuffle=False,
                        num_workers=int(cfg.data.num_workers), collate_fn=collate_readable)
    video_enc, audio_enc, head = video_enc.to(device), audio_enc.to(device), head.to(device)
    v_feats, a_feats, videos = [], [], []
    for batch in loader:
        if batch is None:  # every video of this batch was unreadable
            continue
        v_feats.append(video_enc(batch["video"][0].to(device)).float())
        a_feats.append(audio_enc(batch["audio"][0].to(device)).float())
        videos.append(torch.as_tensor(batch["index"]).long())
    read = {int(i) for part in videos for i in part}
    skipped = [index.entries[i].path for i in range(n) if i not in read]
    if not v_feats:
        raise UserError(f"data: none of the {n} held-out videos could be read (first: {skipped[0]}); see "
                        f"`videossl data check`")
    v, a, video_ids = torch.cat(v_feats), torch.cat(a_feats), torch.cat(videos).numpy()
    partners = negative_partners(video_ids, np.random.default_rng([int(cfg.seed), 1]))
    positive = head.correspondence_logits(v, a).argmax(dim=1).cpu().numpy() == 1
    negative = head.correspondence_logits(v, a[torch.as_tensor(partners, device=device)]).argmax(dim=1).cpu().numpy() == 0
    correct = np.concatenate([positive, negative]).astype(np.float64)
    stats = avc_standard_errors(correct, np.concatenate([video_ids, video_ids]))
    result = {**stats, "chance": 0.5, "num_pairs": int(len(correct)), "num_videos": int(len(np.unique(video_ids))),
              "positive_accuracy": float(positive.mean()), "negative_accuracy": float(negative.mean()),
              "head": type(head).__name__, "encoder": str(cfg.encoder), "split": str(cfg.data.split),
              "audio": geometry, "seed": int(cfg.seed), "skipped_unreadable": skipped}
    if skipped:
        log.warning("AVC: left out %d of %d held-out videos that could not be read (first: %s)", len(skipped), n,
                    skipped[0])
    if cfg.out_dir:
        out = Path(cfg.out_dir)
        write_json(out / "avc.json", result)  # atomic; a read-only out_dir is one line
        report_skipped_files(bad_files(dataset), out)
    print(f"AVC accuracy {100 * stats['accuracy']:.1f}% +- {100 * stats['se']:.1f} (binomial SE over "
          f"{result['num_pairs']} balanced pairs; +- {100 * stats['se_video']:.1f} with each video as one unit) on "
          f"{result['num_videos']} held-out videos; positives {100 * result['positive_accuracy']:.1f}%, negatives "
          f"{100 * result['negative_accuracy']:.1f}%, chance 50%")
    return result


def add_arguments(parser: Any) -> None:
    add_eval_arguments(parser, "optional eval recipe (e.g. eval/avc_kinetics_sounds), then the encoder.pt of an L3 / "
                               "AVE-Net run or its directory (encoder_audio.pt and encoder_avc_head.pt sit beside it)",
                       "AVCEvalConfig overrides, e.g. data.root=/data/kinetics400 data.split=val", "AVCEvalConfig")


def run(args: Any) -> int:
    recipe, encoder, overrides = split_recipe_and_encoder(args)
    run_avc(load_avc_config(encoder, recipe, overrides))
    return 0
