"""Linear probe: a linear classifier trained on frozen, cached features.

Train features come from a few uniformly spaced, center-cropped clips per training video with no
augmentation (each clip is one training example, so the probe sees every part of a video); they are
extracted once and cached, so 100 epochs cost seconds. Before the classifier, features are standardised
with the training set's per-dimension mean and std: the fixed-statistics form of the affine-free
BatchNorm that MAE (He et al. 2022) and solo-learn put in front of the linear head; it makes one learning
rate work for encoders whose feature scales differ by orders of magnitude (random init vs. SSL).
Test: softmax scores of every view (N clips x 3 crops) averaged per video.
"""
from __future__ import annotations

import math
from typing import Any

import torch
from sklearn.svm import LinearSVC
from torch import nn

from .metrics import average_view_scores, topk_accuracy


class StandardisedLinear(nn.Module):
    """``(..., D)`` features -> ``(..., C)`` logits: ``W ((x - mean) / std) + b``."""

    view_average = "softmax"  # how test views combine: "softmax" probabilities, or "decision" values (linear SVM)

    def __init__(self, mean: torch.Tensor, std: torch.Tensor, num_classes: int):
        super().__init__()
        self.register_buffer("mean", mean.clone())
        self.register_buffer("std", std.clone())
        self.fc = nn.Linear(mean.shape[0], num_classes)
        nn.init.zeros_(self.fc.bias)
        nn.init.normal_(self.fc.weight, std=0.01)  # MoCo v3 / MAE linear-probe init

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc((x - self.mean) / self.std)


def train_linear_classifier(features: torch.Tensor, labels: torch.Tensor, num_classes: int, *,
                            epochs: int = 100, batch_size: int = 256, optimizer: str = "sgd",
                            lr: float = 0.1, weight_decay: float = 0.0, seed: int = 0,
                            device: str | torch.device = "cpu") -> StandardisedLinear:
    """Fit a ``StandardisedLinear`` with cross-entropy.

    features: ``(N, D)``; labels: ``(N,)`` ints in ``[0, num_classes)``. ``lr`` is the base rate for a
    batch of 256 (scaled linearly, Goyal et al. 2017); cosine decay to 0 over all steps
    (Loshchilov & Hutter 2017). ``optimizer``: ``"sgd"`` (momentum 0.9) or ``"adamw"``.
    Deterministic for a given ``seed``. Returns the trained probe in eval mode, on CPU.
    """
    if features.ndim != 2 or features.shape[0] != labels.shape[0]:
        raise ValueError(f"linear probe: features (N, D) and labels (N,), got {tuple(features.shape)} and {tuple(labels.shape)}")
    generator = torch.Generator().manual_seed(seed)
    features = features.float()
    mean = features.mean(dim=0)
    std = features.std(dim=0, unbiased=False).clamp_min(1e-6)  # constant dimensions stay 0 after scaling
    torch.manual_seed(seed)
    probe = StandardisedLinear(mean, std, num_classes).to(device)
    x, y = features.to(device), labels.long().to(device)

    num = x.shape[0]
    batch_size = min(batch_size, num)
    scaled_lr = lr * batch_size / 256
    if optimizer == "sgd":
        opt: torch.optim.Optimizer = torch.optim.SGD(probe.parameters(), lr=scaled_lr, momentum=0.9,
                                                     weight_decay=weight_decay)
    elif optimizer == "adamw":
        opt = torch.optim.AdamW(probe.parameters(), lr=scaled_lr, weight_decay=weight_decay)
    else:
        raise ValueError(f"linear probe: unknown optimizer '{optimizer}' (sgd, adamw)")
    steps_per_epoch = math.ceil(num / batch_size)
    schedule = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(epochs * steps_per_epoch, 1))
    probe.train()
    for _ in range(epochs):
        order = torch.randperm(num, generator=generator).to(device)
        for start in range(0, num, batch_size):
            idx = order[start:start + batch_size]
            loss = nn.functional.cross_entropy(probe(x[idx]), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            schedule.step()
    return probe.eval().cpu()


def train_linear_svm(features: torch.Tensor, labels: torch.Tensor, num_classes: int, *, c: float = 1.0,
                     seed: int = 0) -> StandardisedLinear:
    """A one-vs-rest linear SVM (sklearn ``LinearSVC``, squared hinge, ``C = c``) on standardised features, as a
    ``StandardisedLinear`` whose outputs are the SVM's decision values (``view_average = "decision"``).

    BraVe (google-deepmind/brave ``brave/evaluate/evaluate.py`` ``linear_svm_classifier``): ``StandardScaler``
    then ``LinearSVC(C=svm_regularization)``, test decision values averaged over each video's crops.
    features: ``(N, D)``; labels: ``(N,)``. Classes absent from training are never predicted.
    """
    features = features.float()
    mean = features.mean(dim=0)
    std = features.std(dim=0, unbiased=False).clamp_min(1e-6)
    svm = LinearSVC(C=c, random_state=seed).fit(((features - mean) / std).numpy(), labels.long().numpy())
    coef, bias, classes = torch.from_numpy(svm.coef_).float(), torch.from_numpy(svm.intercept_).float(), svm.classes_
    if len(classes) == 2:  # binary: one hyperplane, positive side = classes[1]
        coef, bias = torch.cat([-coef, coef]), torch.cat([-bias, bias])
    probe = StandardisedLinear(mean, std, num_classes)
    with torch.no_grad():
        probe.fc.weight.zero_()
        probe.fc.bias.fill_(-1e4)
        probe.fc.weight[torch.as_tensor(classes)] = coef
        probe.fc.bias[torch.as_tensor(classes)] = bias
    probe.view_average = "decision"
    return probe.eval()


@torch.no_grad()
def linear_probe_scores(probe: nn.Module, test_features: torch.Tensor) -> torch.Tensor:
    """Multi-view test scores. test_features: ``(M, V, D)`` -> ``(M, C)`` softmax averaged over views (an SVM
    probe: its decision values averaged over views)."""
    if getattr(probe, "view_average", "softmax") == "decision":
        return probe(test_features.float()).float().mean(dim=1)
    return average_view_scores(probe(test_features.float()))


def evaluate_linear_probe(train: Any, test: Any, settings: Any, seed: int = 0,
                          device: str | torch.device = "cpu") -> tuple[dict, StandardisedLinear]:
    """Train on ``train`` and score ``test`` (``CachedFeatures`` from ``features.py``).

    train.features: ``(N, V_train, D)``, each view an example; test.features: ``(M, V_test, D)``.
    settings: a ``LinearConfig``. Returns ``({"top1", "top5"}, probe)``.
    """
    num_views = train.features.shape[1]
    if str(getattr(settings, "classifier", "logistic")) == "svm":
        probe = train_linear_svm(train.features.flatten(0, 1), train.labels.repeat_interleave(num_views),
                                 len(train.class_names), c=float(settings.svm_c), seed=seed)
    else:
        probe = train_linear_classifier(
            train.features.flatten(0, 1), train.labels.repeat_interleave(num_views), len(train.class_names),
            epochs=int(settings.epochs), batch_size=int(settings.batch_size), optimizer=str(settings.optimizer),
            lr=float(settings.lr), weight_decay=float(settings.weight_decay), seed=seed, device=device,
        )
    scores = linear_probe_scores(probe, test.features)
    return topk_accuracy(scores, test.labels, ks=(1, 5)), probe
