"""The frozen-feature protocols: linear probe, kNN and retrieval, from one cached feature extraction.

``run_frozen_protocols(cfg, ("linear", "knn"))`` extracts training and test features once per split and
runs every requested protocol on them; ``run_linear_probe`` / ``run_knn`` / ``run_retrieval`` are that
call for one protocol. Each protocol writes ``<out_dir>/<protocol>.json`` and prints a table; the linear
probe also plots a t-SNE of the (video-level) test features of the first split to ``tsne.png``.

``data.split="all"`` runs the three official splits of UCF101 / HMDB51 and reports their mean and std.
"""
from __future__ import annotations

import dataclasses
import logging
from pathlib import Path
from typing import Any, Sequence

import torch
from omegaconf import OmegaConf

from videossl.data.bad_files import report_bad_files
from videossl.errors import UserError

from .features import load_eval_encoder, read_split, resolve_device, train_and_test_features
from .knn import knn_class_scores
from .label_subset import label_fraction_of_features
from .linear import evaluate_linear_probe, linear_probe_scores
from .metrics import aggregate_splits, per_class_top1, retrieval_recall, topk_accuracy, video_level_features
from .multi_view import multi_view_train_and_test_features
from .report import plot_tsne, prepare_out_dir, result_table, write_json

FROZEN_PROTOCOLS = ("linear", "knn", "retrieval")
OFFICIAL_SPLIT_FORMATS = ("ucf101", "hmdb51")
JSON_NAMES = {"linear": "linear.json", "knn": "knn.json", "retrieval": "retrieval.json", "finetune": "finetune.json",
              "attentive": "attentive.json"}


def split_ids(data: Any) -> list[int]:
    """``data.split`` -> official split ids: ``"1"`` -> [1], ``"all"`` -> [1, 2, 3] (UCF101 / HMDB51 only)."""
    split = str(data.split)
    if split == "all":
        if data.format not in OFFICIAL_SPLIT_FORMATS:
            raise UserError(f"data.split=all: only {', '.join(OFFICIAL_SPLIT_FORMATS)} have three official splits "
                            f"(format is '{data.format}'); use data.split=1")
        return [1, 2, 3]
    if split not in ("1", "2", "3"):
        raise UserError(f"data.split: '{split}' is not one of 1, 2, 3, all")
    if split != "1" and data.format not in OFFICIAL_SPLIT_FORMATS:
        raise UserError(f"data.split={split}: format '{data.format}' has a single train/test split; use data.split=1")
    return [int(split)]


def plain(section: Any) -> Any:
    """A config section (OmegaConf node or dataclass) as plain dicts/lists for the JSON files."""
    if dataclasses.is_dataclass(section):
        return dataclasses.asdict(section)
    try:
        return OmegaConf.to_container(section, resolve=True)
    except ValueError:
        return section


def finish_result(protocol: str, cfg: Any, per_split: list[dict], metrics: Sequence[str]) -> dict:
    """Aggregate the splits, add what was evaluated, write ``<out_dir>/<protocol>.json``, print the table."""
    result = aggregate_splits(per_split, metrics)
    if len(per_split) == 1:
        del result["mean"], result["std"]
    result = {
        "protocol": protocol,
        "encoder": str(cfg.encoder),
        "data": {"format": cfg.data.format, "root": str(cfg.data.root), "split": str(cfg.data.split),
                 "num_frames": int(cfg.data.num_frames), "frame_stride": int(cfg.data.frame_stride),
                 "crop_size": int(cfg.data.crop_size)},
        "test_views": plain(cfg.test),
        "settings": plain(getattr(cfg, protocol)),
        **result,
    }
    if cfg.get("reference") is not None and cfg.reference.paper:  # the eval recipe's protocol and target numbers
        result["reference"] = plain(cfg.reference)
    path = write_json(Path(cfg.out_dir) / JSON_NAMES[protocol], result)
    print(result_table(protocol, result, metrics))
    print(f"wrote {path}")
    return result


def run_frozen_protocols(cfg: Any, protocols: Sequence[str] = ("linear", "knn")) -> dict[str, dict]:
    """Run the frozen-feature ``protocols`` on one feature extraction per split.

    Returns ``{protocol: result}`` with result ``{"top1", "top5"}`` (linear, knn) or ``{"R@1", ...}``
    (retrieval), plus ``"splits"`` (one entry per split) and, for ``split=all``, ``"mean"`` / ``"std"``.
    """
    unknown = [p for p in protocols if p not in FROZEN_PROTOCOLS]
    if unknown:
        raise UserError(f"protocols: unknown {unknown} (frozen protocols: {', '.join(FROZEN_PROTOCOLS)})")
    prepare_out_dir(cfg.out_dir)  # a read-only out_dir fails now, not after the feature extraction
    device = resolve_device(str(cfg.device))
    encoder, encoder_key = load_eval_encoder(str(cfg.encoder), seed=int(cfg.seed))
    per_split: dict[str, list[dict]] = {p: [] for p in protocols}
    skipped_files: list = []
    for split_id in split_ids(cfg.data):
        split_features = (multi_view_train_and_test_features if list(getattr(cfg.test, "multi_view", None) or [])
                          else train_and_test_features)  # SVT multi-view inference: one pass per geometry
        train, test = split_features(cfg, encoder, encoder_key, split_id, device)
        skipped_files += [*train.bad_files, *test.bad_files]
        info = {"split": split_id, "num_train": int(train.labels.numel()), "num_test": int(test.labels.numel()),
                "num_classes": len(train.class_names), "feature_dim": int(train.features.shape[-1]),
                "skipped_unreadable": {"train": list(train.skipped), "test": list(test.skipped)}}
        train_videos, test_videos = video_level_features(train.features), video_level_features(test.features)
        if "linear" in protocols:
            torch.manual_seed(int(cfg.seed))
            linear_train, subset = (label_fraction_of_features(train, read_split(cfg.data, "train", split_id), cfg.linear,
                                                               int(cfg.seed), cfg.out_dir, split_id)
                                    if float(cfg.linear.get("label_fraction", 1.0)) < 1.0 else (train, None))
            numbers, probe = evaluate_linear_probe(linear_train, test, cfg.linear, seed=int(cfg.seed), device=device)
            classes = per_class_top1(linear_probe_scores(probe, test.features), test.labels, test.class_names)
            low_shot = {"num_train": int(linear_train.labels.numel()), "label_subset": subset} if subset else {}
            per_split["linear"].append({**info, **numbers, "per_class_top1": classes, **low_shot})
            if cfg.linear.tsne and split_id == split_ids(cfg.data)[0]:
                plot_tsne(test_videos, test.labels, test.class_names, Path(cfg.out_dir) / "tsne.png",
                          max_points=int(cfg.linear.tsne_max_points), seed=int(cfg.seed),
                          title=f"t-SNE of test features ({cfg.encoder}, split {split_id})")
        if "knn" in protocols:
            scores = knn_class_scores(train_videos, train.labels, test_videos, len(train.class_names),
                                      k=int(cfg.knn.k), temperature=float(cfg.knn.temperature))
            per_split["knn"].append({**info, **topk_accuracy(scores, test.labels, ks=(1, 5)),
                                     "per_class_top1": per_class_top1(scores, test.labels, test.class_names)})
        if "retrieval" in protocols:
            ks = [int(k) for k in cfg.retrieval.ks]
            recall = retrieval_recall(test_videos, test.labels, train_videos, train.labels, ks=ks)
            per_split["retrieval"].append({**info, **recall})
    out = {}
    for protocol in protocols:
        metrics = ["top1", "top5"] if protocol != "retrieval" else [f"R@{int(k)}" for k in cfg.retrieval.ks]
        out[protocol] = finish_result(protocol, cfg, per_split[protocol], metrics)
    report_skipped_files(skipped_files, cfg.out_dir)
    return out


def report_skipped_files(rows: Sequence[Any], out_dir: str | Path) -> str | None:
    """Write ``out_dir/bad_files.csv`` when any file was skipped and log the one-line summary naming it."""

    summary = report_bad_files(list(rows), out_dir)
    if summary:
        logging.getLogger("videossl.eval").warning(summary)
    return summary


def run_linear_probe(cfg: Any) -> dict:
    """Linear probe on frozen features; writes ``linear.json`` and ``tsne.png`` under ``cfg.out_dir``."""
    return run_frozen_protocols(cfg, ("linear",))["linear"]


def run_knn(cfg: Any) -> dict:
    """Weighted kNN (k=20, T=0.07) on frozen features; writes ``knn.json``."""
    return run_frozen_protocols(cfg, ("knn",))["knn"]


def run_retrieval(cfg: Any) -> dict:
    """Test videos query training videos, R@1/5/10/20; writes ``retrieval.json``."""
    return run_frozen_protocols(cfg, ("retrieval",))["retrieval"]
