"""Evaluation protocols on an ``encoder.pt`` (or ``random:<backbone>``): linear probe, kNN, fine-tune,
retrieval, on UCF101 / HMDB51 (``data.split`` 1, 2, 3 or ``all``) or any labeled folder/CSV dataset.

    from videossl.eval import load_eval_config, run_frozen_protocols
    cfg = load_eval_config("runs/x/encoder.pt", overrides=["data.format=ucf101", "data.root=/data/ucf101"])
    results = run_frozen_protocols(cfg, ("linear", "knn"))   # one feature extraction for both

Heavy modules (torch, data) load on first use so ``videossl --help`` stays fast.
"""
from __future__ import annotations

import importlib
from typing import Any

_EXPORTS = {
    "EvalConfig": "config",
    "load_eval_config": "config",
    "run_frozen_protocols": "frozen",
    "run_linear_probe": "frozen",
    "run_knn": "frozen",
    "run_retrieval": "frozen",
    "run_finetune": "finetune",
    "clear_feature_cache": "features",
}

__all__ = list(_EXPORTS)


def __getattr__(name: str) -> Any:
    if name in _EXPORTS:
        return getattr(importlib.import_module(f".{_EXPORTS[name]}", __name__), name)
    raise AttributeError(f"module 'videossl.eval' has no attribute '{name}'")
