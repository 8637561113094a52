"""The Zipf-prior fitness (KL on hand-made cluster sizes), k-means sizes, kNN top-1, the evolution strategy."""
import math

import numpy as np
import pytest
import torch

from videossl.search.evolution import Evaluated, initial_population, mutate, next_population
from videossl.search import fitness
from videossl.search.fitness import (evenly_spaced, heldout_halves, kmeans_cluster_sizes, knn_top1, zipf_distribution,
                                     zipf_kl)


def test_zipf_distribution_values():
    q = zipf_distribution(3, 1.0)
    h = 1 + 1 / 2 + 1 / 3
    assert np.allclose(q, [1 / h, 0.5 / h, (1 / 3) / h])
    assert np.allclose(zipf_distribution(4, 0.0), [0.25] * 4)  # s = 0: uniform


def test_zipf_kl_on_hand_made_cluster_sizes():
    # Sizes exactly proportional to 1/r (any order: they are sorted first) -> KL 0.
    assert zipf_kl([20, 60, 30, 15], 1.0) == pytest.approx(0.0, abs=1e-12)
    # Balanced clusters against Zipf(1) over 2 ranks: p = (1/2, 1/2), q = (2/3, 1/3).
    expected = 0.5 * math.log(0.5 / (2 / 3)) + 0.5 * math.log(0.5 / (1 / 3))
    assert zipf_kl([5, 5], 1.0) == pytest.approx(expected)
    # One cluster holding everything: p = (1, 0, 0) -> KL = -log q_1 (0 log 0 = 0).
    assert zipf_kl([9, 0, 0], 1.0) == pytest.approx(-math.log(1 / (1 + 1 / 2 + 1 / 3)))
    # Balanced is perfect under the uniform prior and worse than a Zipf-shaped split under Zipf(1).
    assert zipf_kl([4, 4, 4, 4], 0.0) == pytest.approx(0.0, abs=1e-12)
    assert zipf_kl([48, 24, 16, 12], 1.0) < zipf_kl([25, 25, 25, 25], 1.0)
    with pytest.raises(ValueError):
        zipf_kl([0, 0])


def test_kmeans_sizes_and_knn_on_separable_clusters():
    rng = np.random.default_rng(0)
    centres = np.eye(4) * 10
    counts = [12, 6, 4, 3]
    x = np.concatenate([centres[i] + rng.normal(0, 0.1, (n, 4)) for i, n in enumerate(counts)])
    labels = torch.tensor(np.repeat(np.arange(4), counts))
    sizes = kmeans_cluster_sizes(torch.tensor(x, dtype=torch.float32), 4)
    assert sorted(sizes.tolist(), reverse=True) == counts
    feats = torch.tensor(x, dtype=torch.float32)
    assert knn_top1(feats, labels, feats, labels, k=3) == 1.0
    assert knn_top1(feats, labels, feats, (labels + 1) % 4, k=3) == 0.0


def test_evenly_spaced_subset_keeps_order_and_size():
    from videossl.data.datasets import DatasetIndex, VideoEntry

    index = DatasetIndex([VideoEntry(f"v{i}.mp4", i // 5) for i in range(20)], ["a", "b", "c", "d"])
    sub = evenly_spaced(index, 8)
    assert len(sub.entries) == 8 and sub.entries[0].path == "v0.mp4" and sub.entries[-1].path == "v19.mp4"
    assert sorted({e.label for e in sub.entries}) == [0, 1, 2, 3]  # every class kept
    assert evenly_spaced(index, 0) is index


def test_evolution_is_deterministic_and_follows_the_best():
    pop = initial_population(("a", "b"), 3, 0.5, seed=1)
    assert pop[0] == {"a": 1.0, "b": 1.0} and len(pop) == 3
    assert pop == initial_population(("a", "b"), 3, 0.5, seed=1)
    archive = [Evaluated({"a": 100.0, "b": 0.01}, 5.0), Evaluated({"a": 0.01, "b": 100.0}, -5.0)]
    children = next_population(archive, 1, 6, mu=1, sigma=0.1, seed=0)
    assert children == next_population(archive, 1, 6, mu=1, sigma=0.1, seed=0)
    assert all(c["a"] > 10 and c["b"] < 0.1 for c in children)  # mu=1: every child mutates the best
    mutated = mutate({"a": 1.0}, 0.5, np.random.default_rng(0))
    assert mutated["a"] > 0 and mutated["a"] != 1.0


def test_initial_population_starts_from_given_weights():
    start = {"a": 0.265, "b": 6.88}
    pop = initial_population(("a", "b"), 4, 0.5, seed=2, start=start)
    assert pop[0] == start and len(pop) == 4
    assert all(c != start for c in pop[1:])
    # Draws are log-normal around the start: with sigma 0.5, |log(child / start)| stays under 4 sigma.
    assert all(abs(math.log(c[k] / start[k])) < 2.0 for c in pop[1:] for k in start)
    assert initial_population(("a", "b"), 4, 0.5, seed=2)[0] == {"a": 1.0, "b": 1.0}  # default: equal weights


def test_heldout_halves_alternate_rows_and_keep_classes():
    feats = torch.arange(24, dtype=torch.float32).reshape(12, 2)
    labels = torch.arange(12) // 4  # class-sorted: 4 videos per class
    memory, memory_labels, queries, query_labels = heldout_halves(feats, labels)
    assert memory[:, 0].tolist() == [0, 4, 8, 12, 16, 20] and queries[:, 0].tolist() == [2, 6, 10, 14, 18, 22]
    assert memory_labels.tolist() == query_labels.tolist() == [0, 0, 1, 1, 2, 2]
    with pytest.raises(fitness.UserError):
        heldout_halves(feats[:1], labels[:1])


def test_heldout_knn_fitness_never_reads_the_test_split(monkeypatch):
    # Two well-separated classes in the "train" split: held-out kNN is perfect, and "test" is never embedded.
    rng = np.random.default_rng(0)
    feats = torch.tensor(np.concatenate([rng.normal(0, 0.05, (8, 3)) + [5, 0, 0], rng.normal(0, 0.05, (8, 3)) + [0, 5, 0]]),
                         dtype=torch.float32)
    labels = torch.arange(16) // 8
    asked = []

    def fake_embed(encoder, data, split, max_videos, seed=0):
        asked.append(split)
        return feats, labels

    monkeypatch.setattr(fitness, "embed_split", fake_embed)
    monkeypatch.setattr("videossl.eval.config.load_eval_config", lambda *a, **k: type("C", (), {"data": None})())
    monkeypatch.setattr("videossl.eval.features.load_eval_encoder", lambda *a, **k: (None, None))
    scores = fitness.encoder_fitness("random:tiny_r3d", [], knn_queries="heldout")
    assert asked == ["train"] and scores["knn_top1"] == 1.0 and scores["clusters"] == 2
    scores = fitness.encoder_fitness("random:tiny_r3d", [], knn_queries="test")
    assert asked == ["train", "train", "test"]
    with pytest.raises(fitness.UserError, match="knn_queries"):
        fitness.encoder_fitness("random:tiny_r3d", [], knn_queries="val")


def test_twofold_knn_scores_every_video_once_against_the_other_half():
    from videossl.search.fitness import twofold_knn_top1

    # 5 videos of one class, then 5 of another (class-sorted, as the splits are).
    feats = torch.tensor([[1.0, 0.0]] * 5 + [[0.0, 1.0]] * 5) + 0.01 * torch.arange(10).unsqueeze(1)
    labels = torch.tensor([0] * 5 + [1] * 5)
    assert twofold_knn_top1(feats, labels) == 1.0
    # Mislabel row 9 (odd half): as a query it is wrong (its neighbours 6, 8 say class 1); as a neighbour of the
    # even queries 6 and 8 it is outvoted by rows 5 and 7. So exactly 9 of the 10 videos are right.
    flipped = labels.clone()
    flipped[9] = 0
    assert twofold_knn_top1(feats, flipped) == pytest.approx(0.9)
