"""The linear probe on hand-made features: learns separable classes whatever their scale."""
import pytest
import torch

from videossl.eval.features import CachedFeatures
from videossl.eval.linear import evaluate_linear_probe, linear_probe_scores, train_linear_classifier


def _clusters(n_per_class: int, num_classes: int = 5, dim: int = 12, scale: float = 1.0, seed: int = 0):
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_classes, dim, generator=gen) * 3
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    feats = (centers[labels] + torch.randn(len(labels), dim, generator=gen)) * scale
    return feats, labels


@pytest.mark.parametrize("scale", [1e-3, 1.0, 1e3])
@pytest.mark.parametrize("optimizer", ["sgd", "adamw"])
def test_probe_separates_clusters_at_any_feature_scale(scale, optimizer):
    # Standardisation makes one learning rate work for tiny (random-init) and huge feature scales.
    train_x, train_y = _clusters(30, scale=scale, seed=0)
    test_x, test_y = _clusters(10, scale=scale, seed=0)
    probe = train_linear_classifier(train_x, train_y, 5, epochs=30, batch_size=32, optimizer=optimizer,
                                    lr=0.1 if optimizer == "sgd" else 0.01)
    accuracy = (probe(test_x).argmax(1) == test_y).float().mean().item()
    assert accuracy >= 0.95


def test_probe_is_deterministic_for_a_seed():
    x, y = _clusters(10)
    a = train_linear_classifier(x, y, 5, epochs=3, batch_size=8, seed=1)
    b = train_linear_classifier(x, y, 5, epochs=3, batch_size=8, seed=1)
    assert torch.equal(a.fc.weight, b.fc.weight)


def test_multi_view_scores_average_over_views():
    x, y = _clusters(20)
    probe = train_linear_classifier(x, y, 5, epochs=20, batch_size=32)
    test = x[::20]  # one video per class, (5, D)
    views = torch.stack([test, test + 100 * torch.randn_like(test)], dim=1)  # (5, 2, D): one noisy view
    scores = linear_probe_scores(probe, views)
    assert scores.shape == (5, 5)
    assert torch.allclose(scores.sum(1), torch.ones(5), atol=1e-5)
    expected = (probe(views[:, 0]).softmax(1) + probe(views[:, 1]).softmax(1)) / 2
    assert torch.allclose(scores, expected, atol=1e-6)


def test_evaluate_linear_probe_uses_every_train_view():
    x, y = _clusters(12)
    train = CachedFeatures(torch.stack([x, x + 0.1], dim=1), y, [f"c{i}" for i in range(5)])  # (N, 2, D)
    test = CachedFeatures(torch.stack([x, x, x], dim=1), y, train.class_names)
    from types import SimpleNamespace

    settings = SimpleNamespace(epochs=20, batch_size=32, optimizer="sgd", lr=0.1, weight_decay=0.0)
    numbers, probe = evaluate_linear_probe(train, test, settings)
    assert numbers["top1"] >= 0.95 and numbers["top5"] == 1.0
    assert probe.mean.shape == (12,)
