"""Frozen features scored against several label sets of the same videos: the factor protocol (issue 23).

The factor dataset (``videossl.data.synthetic_factors``) gives every video three independent labels, one csv
manifest per factor and split: ``<root>/factors/<factor>/{train,test}.csv`` with ``classes.txt`` (the ``csv``
reader). :func:`evaluate_factors` extracts the encoder's features ONCE (``features.train_and_test_features``: the
training views and the multi-view test of the eval config, whose ``data`` points at the first factor's manifests),
then per factor relabels those same features and fits a linear probe (``linear.evaluate_linear_probe``) and a
weighted kNN (``knn.knn_class_scores``, Wu et al. 2018): three probes cost seconds, one extraction minutes.

Every top-1 comes with one binomial standard error, sqrt(p (1 - p) / n) over the n test videos.
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Sequence

import torch

from ..data.datasets import DatasetIndex, read_dataset
from ..errors import UserError
from .features import CachedFeatures, load_eval_encoder, read_split, resolve_device, train_and_test_features
from .knn import knn_class_scores
from .linear import evaluate_linear_probe
from .metrics import topk_accuracy, video_level_features


def binomial_se(p: float, n: int) -> float:
    """One standard error of a top-1 ``p`` measured on ``n`` test videos: sqrt(p (1 - p) / n) (0 when n is 0)."""
    return math.sqrt(p * (1.0 - p) / n) if n > 0 else 0.0


def factor_dir(root: str | Path, factor: str) -> Path:
    """``<root>/factors/<factor>``: the csv manifests (train.csv, test.csv) and classes.txt of one factor."""
    return Path(root) / "factors" / factor


def read_factor_index(root: str | Path, factor: str, split: str) -> DatasetIndex:
    """The ``split`` manifest of ``factor`` (csv reader); a missing or bad manifest is one ``UserError`` line."""
    folder = factor_dir(root, factor)
    if not folder.is_dir():
        raise UserError(f"factor dataset {root}: no folder factors/{factor} (the factor's {split}.csv and classes.txt)")
    try:
        return read_dataset("csv", str(folder), split=split)
    except UserError:
        raise
    except (FileNotFoundError, ValueError, KeyError) as err:
        raise UserError(f"factor dataset {folder} ({split}): {err}") from None


def relabel(features: CachedFeatures, kept: Sequence[str], index: DatasetIndex, what: str) -> CachedFeatures:
    """``features`` (rows = the videos ``kept``, in order) with the labels and classes of ``index``.

    Videos are matched by resolved path, so the factor manifests may list them in any order. A kept video the
    manifest does not list is a ``UserError`` naming ``what`` (the manifest)."""
    label_of = {str(Path(e.path).resolve()): e.label for e in index.entries}
    missing = [p for p in kept if str(Path(p).resolve()) not in label_of]
    if missing:
        raise UserError(f"{what}: {len(missing)} of the evaluated videos are not listed (first: {missing[0]})")
    labels = torch.tensor([label_of[str(Path(p).resolve())] for p in kept], dtype=torch.long)
    return features._replace(labels=labels, class_names=list(index.class_names))


def kept_paths(index: DatasetIndex, skipped: Sequence[str]) -> list[str]:
    """Paths of ``index`` in extraction order, without the unreadable ones the extraction left out."""
    left_out = set(skipped)
    return [e.path for e in index.entries if e.path not in left_out]


def probe_factor(train: CachedFeatures, test: CachedFeatures, cfg: Any, device: torch.device) -> dict:
    """Linear probe and weighted kNN top-1 (with binomial SEs) of one factor's labels on shared features.

    train.features: ``(N, V_train, D)``; test.features: ``(M, V_test, D)``."""
    torch.manual_seed(int(cfg.seed))
    linear, _ = evaluate_linear_probe(train, test, cfg.linear, seed=int(cfg.seed), device=device)
    scores = knn_class_scores(video_level_features(train.features), train.labels, video_level_features(test.features),
                              len(train.class_names), k=int(cfg.knn.k), temperature=float(cfg.knn.temperature))
    knn = topk_accuracy(scores, test.labels, ks=(1,))
    n = int(test.labels.numel())
    return {"linear_top1": float(linear["top1"]), "linear_se": binomial_se(float(linear["top1"]), n),
            "knn_top1": float(knn["top1"]), "knn_se": binomial_se(float(knn["top1"]), n),
            "num_train": int(train.labels.numel()), "num_test": n, "num_classes": len(train.class_names)}


def evaluate_factors(cfg: Any, root: str | Path, factors: Sequence[str]) -> dict[str, dict]:
    """``{factor: probe_factor(...)}`` for the encoder of eval config ``cfg`` from one feature extraction.

    ``cfg.data`` reads the first factor's manifests (``format=csv``, ``root=<root>/factors/<factors[0]>``); every
    factor's manifests list the same videos. Unreadable videos are left out of every factor alike."""
    if not factors:
        raise UserError("factor protocol: no factors given")
    device = resolve_device(str(cfg.device))
    encoder, encoder_key = load_eval_encoder(str(cfg.encoder), seed=int(cfg.seed))
    train, test = train_and_test_features(cfg, encoder, encoder_key, 1, device)
    kept = {"train": kept_paths(read_split(cfg.data, "train", 1), train.skipped),
            "test": kept_paths(read_split(cfg.data, "test", 1), test.skipped)}
    out = {}
    for factor in factors:
        f_train, f_test = (relabel(feats, kept[split], read_factor_index(root, factor, split),
                                   f"{factor_dir(root, factor) / split}.csv")
                           for feats, split in ((train, "train"), (test, "test")))
        if factor == factors[0] and not (torch.equal(f_train.labels, train.labels)
                                         and torch.equal(f_test.labels, test.labels)):
            # the extraction read these manifests itself: its labels must come back row for row
            raise RuntimeError(f"factor protocol: rows of the {factor} features do not match their manifest")
        out[factor] = probe_factor(f_train, f_test, cfg, device)
    return out
