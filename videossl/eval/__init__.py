"""Evaluation protocols on an ``encoder.pt`` (or ``random:<backbone>``): linear probe, kNN, fine-tune,
retrieval, on UCF101 / HMDB51 (``data.split`` 1, 2, 3 or ``all``) or any labeled folder/CSV dataset.

    from videossl.eval import load_eval_config, run_frozen_protocols
    cfg = load_eval_config("runs/x/encoder.pt", overrides=["data.format=ucf101", "data.root=/data/ucf101"])
    results = run_frozen_protocols(cfg, ("linear", "knn"))   # one feature extraction for both

Importing this package loads torch and the data layer; ``videossl.cli`` imports it only when an eval command runs.
"""
from __future__ import annotations

from .config import EvalConfig, load_eval_config
from .features import clear_feature_cache
from .finetune import run_finetune
from .frozen import run_frozen_protocols, run_knn, run_linear_probe, run_retrieval

__all__ = ["EvalConfig", "load_eval_config", "run_frozen_protocols", "run_linear_probe", "run_knn", "run_retrieval",
           "run_finetune", "clear_feature_cache"]
