"""Weighted k-nearest-neighbour classification on frozen features.

Wu et al., "Unsupervised Feature Learning via Non-Parametric Instance Discrimination", CVPR 2018, as used by
DINO (Caron et al. 2021, ``eval_knn.py``): cosine similarity to every training feature, the top ``k``
neighbours vote for their class with weight ``exp(sim / T)``; k=20, T=0.07.

Each video is one unit vector: its views' normalised features averaged (``video_level_features``).
"""
from __future__ import annotations

import torch


def knn_class_scores(train_features: torch.Tensor, train_labels: torch.Tensor, test_features: torch.Tensor,
                     num_classes: int, k: int = 20, temperature: float = 0.07,
                     chunk: int = 1024) -> torch.Tensor:
    """Per-class vote totals of each test feature.

    train_features: ``(N, D)``; train_labels: ``(N,)`` ints; test_features: ``(M, D)`` (all normalised
    here). Returns ``(M, num_classes)``: ``sum_{j in top-k} exp(cos(x, x_j) / T) * onehot(y_j)``.
    ``k`` larger than ``N`` uses all ``N`` training features.
    """
    if train_features.shape[0] != train_labels.shape[0]:
        raise ValueError(f"knn: {train_features.shape[0]} train features but {train_labels.shape[0]} labels")
    train = torch.nn.functional.normalize(train_features.float(), dim=1)
    test = torch.nn.functional.normalize(test_features.float(), dim=1)
    k = min(k, train.shape[0])
    scores = torch.zeros(test.shape[0], num_classes)
    for start in range(0, test.shape[0], chunk):  # (chunk, N) similarities at a time bound the memory
        sim = test[start:start + chunk] @ train.T
        top_sim, top_idx = sim.topk(k, dim=1)  # (chunk, k)
        weights = (top_sim / temperature).exp()
        votes = torch.zeros(top_idx.shape[0], num_classes)
        votes.scatter_add_(1, train_labels[top_idx].long(), weights)
        scores[start:start + chunk] = votes
    return scores
