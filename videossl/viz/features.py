"""``videossl features ENCODER DATASET``: an embedding for every video, to ``.npy`` + CSV, and a t-SNE plot.

Each video gives ``--clips`` clips evenly spaced over it (centre crop, no augmentation: the evaluation
views of ``videossl.eval.views.multi_view_spec``); the encoder's pooled features of the clips are averaged
into one ``(D,)`` vector per video. The extraction is the evaluation's own (``videossl.eval.features``,
with its progress bar and its handling of unreadable videos); the plot is ``videossl.eval.report.plot_tsne``.

Writes under ``--out``: ``features.npy`` (float32 ``(N, D)``, row i = video i of ``videos.csv``),
``videos.csv`` (``row,path,label,class``; label -1 when the dataset has no classes), ``features.json``
(what was extracted and how) and ``tsne.png`` (coloured by class).
"""
from __future__ import annotations

import argparse
import csv
import json
import logging
from pathlib import Path
from typing import Any

import numpy as np
import torch
from omegaconf import OmegaConf

from ..data.build import build_index
from ..data.datasets import DatasetIndex
from ..errors import UserError
from ..eval.config import load_eval_config
from ..eval.features import extract_features, load_eval_encoder, resolve_device
from ..eval.report import plot_tsne
from ..eval.views import multi_view_spec
from .attention import resolve_encoder

log = logging.getLogger("videossl.viz")


def eval_overrides(dataset: str, fmt: str | None, config: Path | None) -> list[str]:
    """``EvalConfig`` overrides for the dataset argument and, from a run's ``config.yaml``, its clip geometry
    (and its synthetic dataset's sizes), so a run's encoder sees clips shaped as in pretraining."""
    fmt = fmt or ("synthetic" if dataset == "synthetic" else "folder")
    out = [f"data.format={fmt}"] + ([] if dataset == "synthetic" else [f"data.root={dataset}"])
    if config is not None:
        data = OmegaConf.load(config).get("data", {})
        for ours, theirs in (("num_frames", "num_frames"), ("frame_stride", "frame_stride"), ("crop_size", "crop_size")):
            if data.get(theirs) is not None:
                out.append(f"data.{ours}={data.get(theirs)}")
        if fmt == "synthetic" and data.get("format") == "synthetic":
            out += [f"data.synthetic.{k}={v}" for k, v in dict(data.get("synthetic", {})).items()]
            if data.get("root"):
                out.append(f"data.root={data.get('root')}")
    return out


def read_videos(data: Any, split: str, split_id: int) -> Any:
    """The ``DatasetIndex`` of ``split``; listed files that do not exist are left out with a warning."""
    data_cfg = OmegaConf.create({"format": data.format, "root": data.root, "annotations": data.annotations,
                                 "split_id": split_id, "synthetic": OmegaConf.to_container(data.synthetic)})
    try:
        index = build_index(data_cfg, split)
    except UserError:
        raise
    except (FileNotFoundError, ValueError, KeyError) as err:
        raise UserError(f"dataset ({data.format} at {data.root}, split {split}): {err}") from None
    present = [e for e in index.entries if Path(e.path).is_file()]
    if len(present) < len(index.entries):
        log.warning("%d of %d listed %s videos are missing and left out (first: %s)", len(index.entries) - len(present),
                    len(index.entries), split, next(e.path for e in index.entries if not Path(e.path).is_file()))
    if not present:
        raise UserError(f"dataset: no {split} videos found ({data.format} at {data.root or 'the synthetic cache'})")
    return DatasetIndex(present, index.class_names)


def extract_video_embeddings(encoder: Any, index: Any, data: Any, clips: int, seed: int = 0, device: Any = None,
                             progress: bool = True) -> tuple[Any, list]:
    """``(N, D)`` float32 embeddings (mean over ``clips`` clips per video) and the index entries they belong to
    (unreadable videos are left out)."""
    spec = multi_view_spec(clips, 1, int(data.num_frames), int(data.frame_stride), int(data.crop_size))
    result = extract_features(encoder, index, spec, data, seed=seed, device=device or torch.device("cpu"),
                              progress=progress, desc="features")
    skipped = set(result.skipped)
    kept = [e for e in index.entries if e.path not in skipped]
    return result.features.mean(dim=1).float(), kept


def write_features(out: Path, embeddings: Any, entries: list, class_names: list[str], info: dict) -> list[Path]:
    """``features.npy``, ``videos.csv`` and ``features.json`` under ``out``."""
    out.mkdir(parents=True, exist_ok=True)
    np.save(out / "features.npy", embeddings.numpy().astype(np.float32))
    with open(out / "videos.csv", "w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["row", "path", "label", "class"])
        for row, e in enumerate(entries):
            writer.writerow([row, e.path, e.label, class_names[e.label] if 0 <= e.label < len(class_names) else ""])
    (out / "features.json").write_text(json.dumps(info, indent=2) + "\n")
    return [out / "features.npy", out / "videos.csv", out / "features.json"]


# ----------------------------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("encoder", metavar="ENCODER", help="encoder.pt, a run directory, or random:<backbone>")
    parser.add_argument("dataset", metavar="DATASET", help="'synthetic' or the dataset folder (see --format)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="evaluation config overrides, e.g. data.num_frames=16 data.crop_size=112 device=cuda")
    parser.add_argument("--format", default=None,
                        help="dataset format: folder (default), csv, ucf101, hmdb51, kinetics, ssv2, synthetic")
    parser.add_argument("--split", default="test", help="split: train, test, val (synthetic: pool, train, test)")
    parser.add_argument("--split-id", type=int, default=1, help="official split of UCF101 / HMDB51 (1)")
    parser.add_argument("--clips", type=int, default=4, help="clips per video, evenly spaced, averaged (4)")
    parser.add_argument("--out", default="runs/features", help="output folder (runs/features)")
    parser.add_argument("--no-plot", action="store_true", help="skip the t-SNE plot")
    parser.add_argument("--max-points", type=int, default=2000, help="at most this many videos in the plot (2000)")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    if args.clips < 1:
        raise UserError(f"--clips must be >= 1, got {args.clips}")
    spec, config = resolve_encoder(args.encoder)
    cfg = load_eval_config(spec, None, eval_overrides(args.dataset, args.format, config) + list(args.overrides))
    encoder, _ = load_eval_encoder(spec, seed=int(cfg.seed))
    index = read_videos(cfg.data, args.split, args.split_id)
    embeddings, entries = extract_video_embeddings(encoder, index, cfg.data, args.clips, seed=int(cfg.seed),
                                                   device=resolve_device(str(cfg.device)), progress=bool(cfg.progress))
    out = Path(args.out)
    d = cfg.data
    info = {"encoder": spec, "dataset": args.dataset, "format": d.format, "split": args.split,
            "split_id": args.split_id, "clips_per_video": args.clips, "num_frames": int(d.num_frames),
            "frame_stride": int(d.frame_stride), "crop_size": int(d.crop_size), "num_videos": len(entries),
            "dim": int(embeddings.shape[1]), "class_names": list(index.class_names),
            "left_out_unreadable": len(index.entries) - len(entries)}
    for path in write_features(out, embeddings, entries, list(index.class_names), info):
        print(f"wrote {path}")
    if not args.no_plot:
        if len(entries) < 4:
            print(f"t-SNE skipped: {len(entries)} videos are too few")
        else:
            labels = torch.tensor([max(e.label, -1) for e in entries])
            names = list(index.class_names)
            if (labels < 0).all():
                labels, names = torch.zeros_like(labels), ["unlabeled"]
            title = f"t-SNE of {args.split} videos ({Path(spec).name if ':' not in spec else spec}, {args.clips} clips)"
            print(f"wrote {plot_tsne(embeddings, labels, names, out / 'tsne.png', max_points=args.max_points, title=title)}")
    return 0
