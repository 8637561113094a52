"""Audio classification by a linear probe on frozen audio features (ESC-50 style; CPC's speaker probe).

    from videossl.eval.audio import load_audio_eval_config, run_audio_linear
    cfg = load_audio_eval_config("runs/x/encoder_audio.pt", overrides=["data.format=esc50", "data.root=/data/ESC-50"])
    result = run_audio_linear(cfg)            # {"top1", "top5", "num_train", "num_test", ...}

The encoder is an audio tower (``encoder_audio.pt`` of an audio-visual run, ``encoder.pt`` of CPC) or
``random:<audio backbone>``. Each file gives ``num_windows`` evenly spaced windows of ``seconds``; a CPC encoder
sees the raw waveform and yields its context ``c`` averaged over time (CPC sec. 3.1 probes ``c``), a log-mel
network (``audio_resnet18``) the log-mel spectrogram and its pooled features. Training windows are separate
examples; test scores are averaged over a file's windows. The classifier is ``eval/linear.py``'s standardised
linear layer.

Datasets (``data.format``): ``audio`` / ``folder`` / ``csv`` / ``librispeech`` (``read_dataset``; folder-like
formats use ``<root>/train`` and ``<root>/test`` when they exist), ``esc50`` (``meta/esc50.csv`` + ``audio/``,
fold ``data.test_fold`` is the test set: ESC-50's 5-fold protocol; reader in ``videossl.data.av_datasets``), ``synthetic`` (the audio tracks of the
synthetic videos). A dataset with a single split (e.g. the espeak-ng speaker set) is split per class with
``data.test_fraction``.
"""
from __future__ import annotations

import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch.utils.data import DataLoader

from videossl.backbones import create_backbone, load_encoder
from videossl.config import load_config
from videossl.data.av_datasets import read_esc50_folds  # ESC-50's folds live in the data layer
from videossl.data.bad_files import bad_files
from videossl.data.build import dataset_from_index, resolve_data_root
from videossl.data.config import SyntheticConfig
from videossl.data.datasets import DatasetIndex, read_dataset
from videossl.data.sampling import ClipSampler, SampledViews, VideoMeta, ViewSpec, audio_view
from videossl.data.video_dataset import collate_readable
from videossl.errors import UserError
from videossl.reference import ReferenceConfig
from videossl.transforms.audio import build_audio_transform

from .config import LinearConfig, resolve_eval_recipe
from .features import CachedFeatures, left_out, resolve_device
from .frozen import report_skipped_files
from .linear import evaluate_linear_probe
from .report import write_json

log = logging.getLogger("videossl.eval")


@dataclass
class AudioEvalDataConfig:
    format: str = "audio"  # audio | folder | csv | librispeech | esc50 | synthetic
    root: str = ""
    train_split: str = "train"
    test_split: str = "test"
    test_fold: int = 1  # esc50: the held-out fold (1..5)
    test_fraction: float = 0.0  # >0: ignore the dataset's splits and hold out this fraction of each class
    decoder: str = "pyav"
    audio_rate: int = 16000
    n_mels: int = 64  # log-mel encoders: must match pretraining
    seconds: float = 1.0  # window length (CPC: 1.28 s; L3 / AVID: 1-2 s; ESC-50 clips are 5 s)
    num_windows: int = 3  # windows per file, evenly spaced
    batch_size: int = 32
    num_workers: int = 0
    synthetic: SyntheticConfig = field(default_factory=SyntheticConfig)


@dataclass
class AudioEvalConfig:
    encoder: str = ""  # encoder_audio.pt / encoder.pt (CPC) / random:<audio backbone>
    reference: ReferenceConfig = field(default_factory=ReferenceConfig)  # the protocol's paper and code (eval recipes)
    seed: int = 0
    device: str = "auto"
    out_dir: str = ""  # results.json goes here when set
    data: AudioEvalDataConfig = field(default_factory=AudioEvalDataConfig)
    linear: LinearConfig = field(default_factory=lambda: LinearConfig(optimizer="adamw", lr=0.01, tsne=False))


def load_audio_eval_config(encoder: str, recipe: str | None = None, overrides: list[str] | None = None) -> Any:
    """``AudioEvalConfig`` from an optional recipe (a YAML path or a name under ``recipes/eval/``, e.g.
    ``eval/esc50_linear``), ``a.b=value`` overrides, then ``encoder``."""
    path = resolve_eval_recipe(recipe) if recipe else None
    cfg = load_config(AudioEvalConfig, path, list(overrides or []) + [f"encoder={encoder}"])
    if cfg.data.seconds <= 0 or cfg.data.num_windows < 1:
        raise UserError(f"data.seconds must be > 0 and data.num_windows >= 1, got {cfg.data.seconds}, {cfg.data.num_windows}")
    return cfg


class EvenAudioWindows(ClipSampler):
    """``num_windows`` windows of ``seconds`` evenly spaced over the file (deterministic; the rng is unused).
    Files shorter than a window give windows starting at 0 (padded with silence by the dataset)."""

    def __init__(self, seconds: float, num_windows: int):
        self.seconds, self.num_windows = seconds, num_windows

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        start, end = meta.start, meta.end if meta.end is not None else meta.duration
        room = max(end - start - self.seconds, 0.0)
        views = []
        for i in range(self.num_windows):
            t0 = start + room * ((i + 0.5) / self.num_windows)
            views.append(audio_view(f"audio{i}", (t0, t0 + self.seconds)))
        return SampledViews(views, {})


def load_audio_encoder(spec: str, seed: int = 0) -> torch.nn.Module:
    """``encoder_audio.pt`` / ``encoder.pt`` path or ``random:<backbone>`` -> an audio backbone."""
    if spec.startswith("random:"):
        torch.manual_seed(seed)
        try:
            backbone = create_backbone(spec[len("random:"):])
        except KeyError as err:
            raise UserError(f"encoder: {err.args[0]}") from None
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise UserError(f"encoder: file not found: {path} (give encoder_audio.pt, a CPC encoder.pt or random:<backbone>)")
        backbone = load_encoder(path)  # every kind of wrong file is one UserError line (videossl.loading)
    if getattr(backbone, "modality", "video") != "audio":
        raise UserError(f"encoder: {spec} is a {getattr(backbone, 'modality', 'video')} backbone; audio-linear needs an "
                        f"audio tower (encoder_audio.pt of an audio-visual run, or a CPC encoder.pt)")
    return backbone


def audio_input_kind(backbone: torch.nn.Module) -> str:
    """``"raw"`` for waveform encoders (CPC), ``"logmel"`` for spectrogram networks."""
    return "raw" if hasattr(backbone, "encode") and hasattr(backbone, "context") else "logmel"


# ----------------------------------------------------------------------------------------------------
# Datasets
# ----------------------------------------------------------------------------------------------------


def split_by_class(index: Any, test_fraction: float, seed: int) -> tuple[Any, Any]:
    """Hold out ``test_fraction`` of each class (at least one file per side when the class has two)."""
    rng = np.random.default_rng(seed)
    train, test = [], []
    for label in sorted({e.label for e in index.entries}):
        files = [e for e in index.entries if e.label == label]
        order = rng.permutation(len(files))
        n_test = min(max(1, int(round(test_fraction * len(files)))), len(files) - 1) if len(files) > 1 else 0
        test += [files[i] for i in order[:n_test]]
        train += [files[i] for i in order[n_test:]]
    return DatasetIndex(train, index.class_names), DatasetIndex(test, index.class_names)


def read_audio_splits(data: Any, seed: int = 0) -> tuple[Any, Any]:
    """(train, test) ``DatasetIndex`` for ``data`` (an ``AudioEvalDataConfig``); the dataset root as the data layer
    resolves it (``resolve_data_root``: ``synthetic`` is the cached set's ``train`` / ``test`` folders)."""
    fmt, root = resolve_data_root(data)
    if fmt == "esc50":
        train, test = read_esc50_folds(Path(root), int(data.test_fold))
    elif data.test_fraction > 0:
        train, test = split_by_class(read_dataset(fmt, root, split=data.train_split), data.test_fraction, seed)
    else:
        train = read_dataset(fmt, root, split=data.train_split)
        test = read_dataset(fmt, root, split=data.test_split)
        if [e.path for e in train.entries] == [e.path for e in test.entries]:
            raise UserError(f"data: {root} has no separate {data.train_split}/{data.test_split} splits; "
                            f"set data.test_fraction (e.g. 0.3) to hold out part of each class")
    for name, index in (("train", train), ("test", test)):
        if not index.entries or any(e.label < 0 for e in index.entries):
            raise UserError(f"data: the {name} split of {root} is empty or unlabeled (audio-linear needs classes)")
    if train.class_names != test.class_names:
        raise UserError(f"data: train and test list different classes ({len(train.class_names)} vs {len(test.class_names)})")
    return train, test


# ----------------------------------------------------------------------------------------------------
# Features and the probe
# ----------------------------------------------------------------------------------------------------


def extract_audio_features(encoder: torch.nn.Module, index: Any, data: Any, seed: int = 0,
                           device: torch.device = torch.device("cpu")) -> Any:
    """``CachedFeatures`` with ``(N, num_windows, D)`` frozen features of every readable file of ``index`` (an
    unreadable one is left out, never replaced by another file, and listed in ``skipped`` / ``bad_files``)."""
    kind = audio_input_kind(encoder)
    transform = build_audio_transform(kind, data.audio_rate, data.n_mels, augment=False)
    spec = ViewSpec(EvenAudioWindows(data.seconds, data.num_windows), {"audio": transform}, data.audio_rate)
    dataset = dataset_from_index(data, index, spec, seed=seed, replace_unreadable=False)
    loader = DataLoader(dataset, batch_size=int(data.batch_size), shuffle=False, num_workers=int(data.num_workers),
                        collate_fn=collate_readable)
    encoder = encoder.to(device).eval()
    feats, labels, loaded = [], [], []
    with torch.inference_mode():
        for batch in loader:
            if batch is None:  # every file of this batch was unreadable
                continue
            windows = torch.stack(batch["audio"], dim=1)  # (B, V, 1, ...)
            if kind == "raw":
                windows = windows[..., : windows.shape[-1] // 160 * 160]  # the CPC encoder's stride
                # CPC trains on per-window standardised waveforms (methods/cpc.py standardize_input)
                windows = (windows - windows.mean(dim=-1, keepdim=True)) / windows.std(dim=-1, keepdim=True).clamp_min(1e-5)
            flat = windows.flatten(0, 1).to(device)
            feats.append(encoder.forward_features(flat).float().cpu().view(*windows.shape[:2], -1))
            labels.append(torch.as_tensor(batch["label"]).long())
            loaded.append(torch.as_tensor(batch["index"]).long())
    order, skipped = left_out(index, torch.cat(loaded) if loaded else torch.zeros(0, dtype=torch.long),
                              "audio features")
    return CachedFeatures(torch.cat(feats)[order], torch.cat(labels)[order], list(index.class_names), skipped,
                          tuple(bad_files(dataset)))


def run_audio_linear(cfg: Any) -> dict[str, Any]:
    """Extract train/test features of ``cfg.encoder``, fit the linear probe, report top-1/top-5."""
    device = resolve_device(cfg.device)
    encoder = load_audio_encoder(cfg.encoder, int(cfg.seed))
    train_index, test_index = read_audio_splits(cfg.data, int(cfg.seed))
    train = extract_audio_features(encoder, train_index, cfg.data, int(cfg.seed), device)
    test = extract_audio_features(encoder, test_index, cfg.data, int(cfg.seed), device)
    scores, _ = evaluate_linear_probe(train, test, cfg.linear, seed=int(cfg.seed), device=device)
    result = {**scores, "num_train": int(train.labels.numel()), "num_test": int(test.labels.numel()),
              "num_classes": len(train.class_names), "encoder": cfg.encoder, "input": audio_input_kind(encoder),
              "skipped_unreadable": {"train": list(train.skipped), "test": list(test.skipped)}}
    if cfg.out_dir:
        write_json(Path(cfg.out_dir) / "audio_linear.json", result)  # atomic; a read-only out_dir is one line
        report_skipped_files([*train.bad_files, *test.bad_files], cfg.out_dir)
    print(f"audio linear probe ({cfg.encoder}): top-1 {100 * result['top1']:.1f}%  top-5 {100 * result['top5']:.1f}%  "
          f"({result['num_train']} train / {result['num_test']} test files, {result['num_classes']} classes)")
    return result
