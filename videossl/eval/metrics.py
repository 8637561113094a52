"""Scores and numbers shared by the protocols: top-k accuracy, multi-view averaging, retrieval recall,
and the mean/std over the three official splits. Pure functions on tensors, no data loading."""
from __future__ import annotations

import math
from typing import Sequence

import torch


def topk_accuracy(scores: torch.Tensor, labels: torch.Tensor, ks: Sequence[int] = (1, 5)) -> dict[str, float]:
    """Fraction of rows whose label is among the ``k`` highest scores.

    scores: ``(N, C)``; labels: ``(N,)`` ints in ``[0, C)``. Returns ``{"top1": .., "top5": ..}``.
    With fewer than ``k`` classes, top-k is computed over all ``C`` classes (and is 1.0).
    Ties are broken by ``torch.topk`` (one class per rank), so a constant score is not counted as correct
    for every class.
    """
    if scores.ndim != 2 or labels.ndim != 1 or scores.shape[0] != labels.shape[0]:
        raise ValueError(f"topk_accuracy: scores (N, C) and labels (N,), got {tuple(scores.shape)} and {tuple(labels.shape)}")
    num = scores.shape[0]
    top = scores.topk(min(max(ks), scores.shape[1]), dim=1).indices  # (N, kmax)
    hits = top.eq(labels.view(-1, 1))
    out = {}
    for k in ks:
        out[f"top{k}"] = int(hits[:, :k].any(dim=1).sum()) / max(num, 1)  # exact fraction, not float32
    return out


def per_class_top1(scores: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str]) -> dict[str, float | None]:
    """Top-1 accuracy of each class: ``{class name: fraction of its test rows predicted right}``.

    scores: ``(N, C)``; labels: ``(N,)``. A class with no test rows maps to ``None``.
    """
    predicted = scores.argmax(dim=1)
    out: dict[str, float | None] = {}
    for c, name in enumerate(class_names):
        rows = labels == c
        count = int(rows.sum())
        out[str(name)] = int((predicted[rows] == c).sum()) / count if count else None
    return out


def average_view_scores(logits: torch.Tensor) -> torch.Tensor:
    """Multi-view test: softmax each view's logits, average over views.

    logits: ``(N, V, C)`` for N videos seen through V views (clips x crops) -> ``(N, C)`` probabilities.
    """
    if logits.ndim != 3:
        raise ValueError(f"average_view_scores: expected (N, V, C) logits, got {tuple(logits.shape)}")
    return logits.float().softmax(dim=-1).mean(dim=1)


def video_level_features(features: torch.Tensor) -> torch.Tensor:
    """Average the L2-normalised features of each video's views and re-normalise.

    features: ``(N, V, D)`` -> ``(N, D)`` unit vectors (the per-video descriptor of kNN and retrieval).
    """
    if features.ndim != 3:
        raise ValueError(f"video_level_features: expected (N, V, D), got {tuple(features.shape)}")
    feats = torch.nn.functional.normalize(features.float(), dim=-1).mean(dim=1)
    return torch.nn.functional.normalize(feats, dim=-1)


def retrieval_recall(query: torch.Tensor, query_labels: torch.Tensor, gallery: torch.Tensor,
                     gallery_labels: torch.Tensor, ks: Sequence[int] = (1, 5, 10, 20),
                     chunk: int = 1024) -> dict[str, float]:
    """Recall@k of class retrieval with cosine similarity (Xu et al., VCOP, CVPR 2019).

    query: ``(Q, D)`` test videos; gallery: ``(G, D)`` training videos; labels ``(Q,)``, ``(G,)``.
    A query is a hit at ``k`` when any of its ``k`` most similar gallery items has its class.
    Returns ``{"R@1": .., "R@5": .., ...}``; ``k`` larger than ``G`` is clipped to ``G``.
    """
    q = torch.nn.functional.normalize(query.float(), dim=1)
    g = torch.nn.functional.normalize(gallery.float(), dim=1)
    kmax = min(max(ks), g.shape[0])
    hits = []
    for start in range(0, q.shape[0], chunk):  # (chunk, G) similarities at a time bound the memory
        sim = q[start:start + chunk] @ g.T
        nearest = sim.topk(kmax, dim=1).indices
        hits.append(gallery_labels[nearest].eq(query_labels[start:start + chunk].view(-1, 1)))
    hit = torch.cat(hits) if hits else torch.zeros(0, kmax, dtype=torch.bool)
    num = max(q.shape[0], 1)
    return {f"R@{k}": int(hit[:, :min(k, kmax)].any(dim=1).sum()) / num for k in ks}


def aggregate_splits(results: list[dict], keys: Sequence[str]) -> dict:
    """Mean and (sample, ddof=1) standard deviation of ``keys`` over per-split results.

    Returns ``{"splits": results, "mean": {k: ..}, "std": {k: ..}, **mean}`` so ``out["top1"]`` is the
    mean whether one split or three were run. One split: std is 0.
    """
    if not results:
        raise ValueError("aggregate_splits: no split results")
    mean, std = {}, {}
    for key in keys:
        values = [float(r[key]) for r in results]
        mu = sum(values) / len(values)
        var = sum((v - mu) ** 2 for v in values) / (len(values) - 1) if len(values) > 1 else 0.0
        mean[key], std[key] = mu, math.sqrt(var)
    return {**mean, "splits": results, "mean": mean, "std": std}
