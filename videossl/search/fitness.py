"""Fitness of an encoder for the loss-weight search: ELo's unlabeled Zipf prior, and a labeled kNN for comparison.

ELo (Piergiovanni, Angelova and Ryoo, CVPR 2020, sec. 3.3): embed a held-out set of unlabeled videos, cluster the
embeddings with k-means (k = the number of classes one expects), sort the cluster sizes in descending order and
measure the KL divergence between that distribution and a Zipf distribution over the k ranks,
``q_r = r^-s / sum_j j^-s`` (s = 1, the prior that class frequencies of real video data follow). Lower KL = better;
``zipf_fitness`` is its negation, so that higher is better for every fitness here. ``s = 0`` is the uniform
distribution, the right prior for a class-balanced dataset (the synthetic one), reported as ``uniform_kl``.

The labeled fitness is kNN top-1 (k = 20, T = 0.07, ``videossl.eval.knn``) of the test split against the labeled
train split, one centre clip per video; or (``knn_queries="heldout"``) two-fold within the train split (odd videos
against even ones and the reverse, averaged over all train videos), so that a search selecting by it never sees the
test split its result is reported on.
"""
from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import torch
from sklearn.cluster import KMeans

from videossl.data.datasets import DatasetIndex
from videossl.errors import UserError
from videossl.eval.config import load_eval_config
from videossl.eval.features import extract_features, load_eval_encoder, read_split
from videossl.eval.knn import knn_class_scores
from videossl.eval.views import multi_view_spec


def zipf_distribution(k: int, s: float = 1.0) -> np.ndarray:
    """``(k,)`` probabilities of ranks 1..k under Zipf's law with exponent ``s`` (s = 0: uniform)."""
    if k < 1:
        raise ValueError(f"zipf: need k >= 1 ranks, got {k}")
    ranks = np.arange(1, k + 1, dtype=np.float64)
    q = ranks ** -float(s)
    return q / q.sum()


def zipf_kl(cluster_sizes: Any, s: float = 1.0) -> float:
    """``KL(p || Zipf_s)`` where p is the cluster-size distribution sorted in descending order.

    cluster_sizes: ``(k,)`` non-negative counts (empty clusters count as 0 and take the last ranks; ``0 log 0 = 0``).
    """
    sizes = np.sort(np.asarray(cluster_sizes, dtype=np.float64).ravel())[::-1]
    if sizes.size == 0 or (sizes < 0).any() or sizes.sum() <= 0:
        raise ValueError(f"zipf_kl: cluster sizes must be non-negative with a positive total, got {sizes.tolist()}")
    p = sizes / sizes.sum()
    q = zipf_distribution(sizes.size, s)
    nz = p > 0
    return float(np.sum(p[nz] * np.log(p[nz] / q[nz])))


def kmeans_cluster_sizes(features: torch.Tensor, k: int, seed: int = 0) -> np.ndarray:
    """k-means (scikit-learn, k-means++ init, 4 restarts) on L2-normalised ``(N, D)`` features -> ``(k,)`` sizes."""
    x = torch.nn.functional.normalize(features.float(), dim=1).numpy().astype(np.float64)
    if x.shape[0] < k:
        raise UserError(f"fitness: {x.shape[0]} videos cannot fill k={k} clusters (use more fitness videos or a smaller k)")
    labels = KMeans(n_clusters=k, n_init=4, random_state=seed).fit_predict(x)
    return np.bincount(labels, minlength=k)


def knn_top1(train: torch.Tensor, train_labels: torch.Tensor, test: torch.Tensor, test_labels: torch.Tensor,
             k: int = 20, temperature: float = 0.07) -> float:
    """Weighted kNN top-1 (DINO's protocol) of ``(M, D)`` test features against ``(N, D)`` labeled train features."""
    num_classes = int(max(train_labels.max(), test_labels.max())) + 1
    scores = knn_class_scores(train, train_labels, test, num_classes, k=k, temperature=temperature)
    return float((scores.argmax(dim=1) == test_labels).float().mean())


def evenly_spaced(index: Any, max_videos: int) -> Any:
    """At most ``max_videos`` entries of a ``DatasetIndex``, evenly spaced (class-balanced for class-sorted lists)."""
    n = len(index.entries)
    if max_videos <= 0 or n <= max_videos:
        return index
    keep = sorted(set(np.linspace(0, n - 1, max_videos).round().astype(int).tolist()))
    return DatasetIndex([index.entries[i] for i in keep], index.class_names)


def embed_split(encoder: torch.nn.Module, data: Any, split: str, max_videos: int, seed: int = 0
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(N, D)`` features (one centre clip and crop per video) and ``(N,)`` labels of ``split``."""
    index = evenly_spaced(read_split(data, split, 1), max_videos)
    spec = multi_view_spec(1, 1, int(data.num_frames), int(data.frame_stride), int(data.crop_size))
    out = extract_features(encoder, index, spec, data, seed=seed, desc=f"fitness {split}")
    return out.features[:, 0], out.labels


KNN_QUERIES = ("test", "heldout")


def heldout_halves(features: torch.Tensor, labels: torch.Tensor
                   ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """Split ``(N, D)`` features of a class-sorted split into memory (even rows) and queries (odd rows).

    Alternate rows keep both halves class-balanced when the split lists its videos class by class (ours do).
    Returns ``memory (ceil(N/2), D), memory_labels, queries (floor(N/2), D), query_labels``.
    """
    if features.shape[0] < 2:
        raise UserError(f"fitness: the held-out kNN needs at least 2 train videos, got {features.shape[0]}")
    return features[0::2], labels[0::2], features[1::2], labels[1::2]


def twofold_knn_top1(features: torch.Tensor, labels: torch.Tensor) -> float:
    """kNN top-1 of ``(N, D)`` labeled features without a test set: each half queried against the other, averaged
    over all N videos (every video is a query once, never its own neighbour)."""
    memory, memory_labels, queries, query_labels = heldout_halves(features, labels)
    n_a, n_b = queries.shape[0], memory.shape[0]
    a = knn_top1(memory, memory_labels, queries, query_labels)
    b = knn_top1(queries, query_labels, memory, memory_labels)
    return (a * n_a + b * n_b) / (n_a + n_b)


def encoder_fitness(encoder_path: str | Path, eval_overrides: list[str], clusters: int = 0, zipf_s: float = 1.0,
                    max_videos: int = 0, seed: int = 0, knn_queries: str = "test") -> dict[str, float]:
    """All fitness values of one ``encoder.pt`` (or ``random:<backbone>``).

    eval_overrides: ``videossl.eval`` config overrides naming the data (e.g. the quickstart's
    ``eval.synthetic_protocol.eval_data_overrides`` of the pretraining config). The held-out unlabeled set is the ``train`` split with its
    labels ignored (it is not the pretraining pool); kNN uses ``train`` as memory and ``test`` as queries.
    ``knn_queries`` "heldout": two-fold kNN within the train split instead (odd videos against even ones and the
    reverse; the test split is not read).
    ``clusters`` 0: the number of classes of the labeled set. Returns ``{"zipf_kl", "uniform_kl", "knn_top1",
    "clusters", "cluster_sizes"}`` (sizes as a space-separated string, largest first).
    """
    if knn_queries not in KNN_QUERIES:
        raise UserError(f"fitness: knn_queries must be one of {', '.join(KNN_QUERIES)}, got '{knn_queries}'")
    cfg = load_eval_config(str(encoder_path), None, list(eval_overrides))
    encoder, _ = load_eval_encoder(str(encoder_path), seed=seed)
    train, train_labels = embed_split(encoder, cfg.data, "train", max_videos, seed)
    if knn_queries == "heldout":
        knn = twofold_knn_top1(train, train_labels)
    else:
        test, test_labels = embed_split(encoder, cfg.data, "test", max_videos, seed)
        knn = knn_top1(train, train_labels, test, test_labels)
    k = clusters or int(train_labels.max()) + 1
    sizes = kmeans_cluster_sizes(train, k, seed)
    return {"zipf_kl": zipf_kl(sizes, zipf_s), "uniform_kl": zipf_kl(sizes, 0.0), "knn_top1": knn, "clusters": k,
            "cluster_sizes": " ".join(str(int(v)) for v in np.sort(sizes)[::-1])}
