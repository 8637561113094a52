"""Exact answers of the pure scoring functions on hand-made tensors."""
import math

import pytest
import torch

from videossl.eval.knn import knn_class_scores
from videossl.eval.metrics import (aggregate_splits, average_view_scores, retrieval_recall, topk_accuracy,
                                   video_level_features)


def test_topk_accuracy_known_answer():
    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.3, 0.5], [0.6, 0.3, 0.1], [0.1, 0.2, 0.7]])
    labels = torch.tensor([0, 1, 1, 2])
    out = topk_accuracy(scores, labels, ks=(1, 2, 5))
    assert out["top1"] == pytest.approx(2 / 4)  # rows 0 and 3
    assert out["top2"] == pytest.approx(4 / 4)  # row 1: label 1 is second; row 2: label 1 is second
    assert out["top5"] == 1.0  # fewer than 5 classes: every class is in the top 5


def test_topk_accuracy_constant_scores_are_not_all_correct():
    scores = torch.zeros(4, 10)
    labels = torch.tensor([0, 3, 7, 9])
    assert topk_accuracy(scores, labels)["top1"] <= 0.25  # one predicted class per row, whichever it is


def test_average_view_scores_softmax_then_mean():
    # Video 0: one confident view for class 1, one mild view for class 0 -> class 1 wins after softmax.
    logits = torch.tensor([[[0.0, 10.0], [1.0, 0.0]]])
    probs = average_view_scores(logits)
    expected = (torch.softmax(logits[0, 0], 0) + torch.softmax(logits[0, 1], 0)) / 2
    assert torch.allclose(probs[0], expected)
    assert probs.argmax(1).item() == 1
    assert torch.allclose(probs.sum(1), torch.ones(1))


def test_video_level_features_are_unit_means():
    feats = torch.tensor([[[2.0, 0.0], [0.0, 5.0]]])  # normalised: (1,0) and (0,1) -> mean (0.5, 0.5)
    out = video_level_features(feats)
    assert torch.allclose(out, torch.tensor([[1.0, 1.0]]) / math.sqrt(2))


def test_knn_k1_on_separable_clusters_is_perfect():
    gen = torch.Generator().manual_seed(0)
    centers = torch.eye(4, 16) * 10
    train_labels = torch.arange(4).repeat_interleave(10)
    test_labels = torch.arange(4).repeat_interleave(5)
    train = centers[train_labels] + 0.5 * torch.randn(40, 16, generator=gen)
    test = centers[test_labels] + 0.5 * torch.randn(20, 16, generator=gen)
    scores = knn_class_scores(train, train_labels, test, num_classes=4, k=1, temperature=0.07)
    assert topk_accuracy(scores, test_labels)["top1"] == 1.0
    assert (scores > 0).sum(1).eq(1).all()  # k=1: exactly one class gets a vote


def test_knn_weights_are_exp_sim_over_t():
    train = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    labels = torch.tensor([0, 1, 1])
    test = torch.tensor([[1.0, 0.0]])
    scores = knn_class_scores(train, labels, test, num_classes=2, k=2, temperature=0.5)
    # nearest two: train 0 (cos 1) -> class 0, train 2 (cos 1/sqrt2) -> class 1; train 1 (cos 0) excluded
    assert scores[0, 0].item() == pytest.approx(math.exp(1 / 0.5), rel=1e-5)
    assert scores[0, 1].item() == pytest.approx(math.exp((1 / math.sqrt(2)) / 0.5), rel=1e-5)


def test_knn_weighted_vote_beats_majority():
    # Two far neighbours of class 1 against one very close neighbour of class 0: with T small the close one wins.
    train = torch.tensor([[1.0, 0.0], [0.6, 0.8], [0.6, -0.8]])
    labels = torch.tensor([0, 1, 1])
    test = torch.tensor([[1.0, 0.0]])
    assert knn_class_scores(train, labels, test, 2, k=3, temperature=0.07).argmax(1).item() == 0
    assert knn_class_scores(train, labels, test, 2, k=3, temperature=100.0).argmax(1).item() == 1


def test_retrieval_recall_constructed_case():
    # Gallery on the unit circle; each query's neighbour order is known by angle.
    angles = torch.tensor([0.0, 0.1, 0.2, 1.5, 1.6, 3.0])
    gallery = torch.stack([angles.cos(), angles.sin()], 1)
    gallery_labels = torch.tensor([0, 1, 1, 2, 2, 0])
    queries = torch.stack([torch.tensor([0.0, 1.55]).cos(), torch.tensor([0.0, 1.55]).sin()], 1)
    query_labels = torch.tensor([1, 0])
    # query 0 (angle 0): order 0.0(c0), 0.1(c1), 0.2(c1)... -> miss at 1, hit at 2
    # query 1 (angle 1.55): order 1.5/1.6 (c2), 0.2 (c1), 0.1 (c1), 0.0 (c0) -> hit first at rank 5
    out = retrieval_recall(queries, query_labels, gallery, gallery_labels, ks=(1, 2, 5, 20))
    assert out == {"R@1": 0.0, "R@2": 0.5, "R@5": 1.0, "R@20": 1.0}


def test_aggregate_splits_mean_and_sample_std():
    splits = [{"split": 1, "top1": 0.5, "top5": 0.9}, {"split": 2, "top1": 0.6, "top5": 0.8},
              {"split": 3, "top1": 0.7, "top5": 0.7}]
    out = aggregate_splits(splits, ["top1", "top5"])
    assert out["top1"] == pytest.approx(0.6) and out["mean"]["top5"] == pytest.approx(0.8)
    assert out["std"]["top1"] == pytest.approx(0.1)  # sample std (ddof=1) of 0.5, 0.6, 0.7
    assert out["std"]["top5"] == pytest.approx(0.1)
    assert out["splits"] == splits
    assert aggregate_splits(splits[:1], ["top1"])["std"]["top1"] == 0.0



def test_per_class_top1_counts_each_class_on_its_own_rows():
    from videossl.eval.metrics import per_class_top1

    scores = torch.tensor([[0.9, 0.1, 0.0], [0.2, 0.8, 0.0], [0.7, 0.3, 0.0], [0.1, 0.9, 0.0]])
    labels = torch.tensor([0, 1, 1, 1])  # class 0: 1/1 right; class 1: 2/3 right; class 2: no test rows
    assert per_class_top1(scores, labels, ["a", "b", "c"]) == {"a": 1.0, "b": 2 / 3, "c": None}
