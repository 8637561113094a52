"""Shared fixtures. Every random test is seeded; no test reaches the network."""
import os

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(autouse=True)
def _seed_everything():
    import random

    import numpy as np
    import torch

    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    torch.set_num_threads(1)
    yield


@pytest.fixture(scope="session")
def tiny_pool(tmp_path_factory):
    """Folder of a few short 32 px synthetic videos (labeled folder layout) for two-step training runs."""
    from videossl.data.synthetic import ensure_synthetic

    root = ensure_synthetic(tmp_path_factory.mktemp("synthetic"), num_pool=8, num_train=12, num_test=12, size=32,
                            min_seconds=1.0, max_seconds=1.5, seed=0, workers=1, progress=False)
    return root / "train"


def _tiny_overrides(pool, run_dir, frames=4, steps=2, extra=()):
    return ["data.format=folder", f"data.root={pool}", f"data.num_frames={frames}", "data.frame_stride=1",
            "data.crop_size=32", "data.num_workers=0", "train.batch_size=4", f"train.max_steps={steps}",
            "train.log_every=1", "train.progress=false", f"train.run_dir={run_dir}", *extra]


@pytest.fixture
def tiny_overrides():
    """``tiny_overrides(pool, run_dir, frames=4, steps=2, extra=())`` -> overrides for a tiny CPU training run."""
    return _tiny_overrides
