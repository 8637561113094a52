"""linear.classifier=svm (BraVe's frozen protocol): sklearn's StandardScaler + LinearSVC, decision values averaged
over each test video's views; the default (logistic) is unchanged."""
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from videossl.eval.config import LinearConfig, load_eval_config
from videossl.eval.features import CachedFeatures
from videossl.eval.linear import evaluate_linear_probe, linear_probe_scores, train_linear_svm
from videossl.errors import UserError


def _clusters(n_per_class, num_classes=4, dim=10, seed=0):
    gen = torch.Generator().manual_seed(seed)
    centers = torch.randn(num_classes, dim, generator=gen) * 2
    labels = torch.arange(num_classes).repeat_interleave(n_per_class)
    return centers[labels] + torch.randn(len(labels), dim, generator=gen) * 1.5 + 5.0, labels


def test_svm_probe_is_sklearn_standard_scaler_then_linear_svc():
    from sklearn.preprocessing import StandardScaler
    from sklearn.svm import LinearSVC

    x, y = _clusters(40)
    probe = train_linear_svm(x, y, 4, c=1e-2)
    scaler = StandardScaler().fit(x.numpy())
    svm = LinearSVC(C=1e-2, random_state=0).fit(scaler.transform(x.numpy()), y.numpy())
    test_x, _ = _clusters(10, seed=1)
    expected = svm.decision_function(scaler.transform(test_x.numpy()))
    assert np.allclose(probe(test_x).detach().numpy(), expected, atol=1e-4)
    assert probe.view_average == "decision"


def test_svm_test_scores_average_decision_values_over_views():
    x, y = _clusters(30)
    train = CachedFeatures(torch.stack([x, x + 0.05], dim=1), y, [f"c{i}" for i in range(4)])
    test_x, test_y = _clusters(8, seed=2)
    views = torch.stack([test_x, test_x + 1.0, test_x - 0.5], dim=1)  # (M, 3, D)
    test = CachedFeatures(views, test_y, train.class_names)
    settings = SimpleNamespace(classifier="svm", svm_c=1e-4)
    numbers, probe = evaluate_linear_probe(train, test, settings)
    scores = linear_probe_scores(probe, views)
    assert torch.allclose(scores, probe(views).mean(dim=1), atol=1e-6)  # decision values, not softmax
    assert not torch.allclose(scores.sum(dim=1), torch.ones(len(views)))
    assert numbers["top1"] == pytest.approx((scores.argmax(1) == test_y).float().mean().item())


def test_svm_binary_and_missing_classes():
    x, y = _clusters(20, num_classes=2)
    probe = train_linear_svm(x, y + 1, 3, c=1.0)  # class 0 never seen: never predicted
    pred = probe(x).argmax(1)
    assert set(pred.tolist()) <= {1, 2} and (pred == y + 1).float().mean() > 0.9


def test_linear_config_defaults_unchanged_and_classifier_checked():
    cfg = LinearConfig()
    assert (cfg.classifier, cfg.svm_c, cfg.optimizer) == ("logistic", 1.0, "sgd")
    with pytest.raises(UserError, match="linear.classifier"):
        load_eval_config("random:tiny_r3d", None, ["linear.classifier=rbf"])
    with pytest.raises(UserError, match="svm_c"):
        load_eval_config("random:tiny_r3d", None, ["linear.classifier=svm", "linear.svm_c=0"])
