"""data.gpu_augment: workers only crop and flip; colour, blur and normalisation run batched in the engine."""
import csv

import torch

from videossl.config import load_pretrain_config
from videossl.engine.trainer import pretrain
from videossl.methods import METHODS


def test_views_split_into_worker_and_device_stages(tiny_pool, tiny_overrides, tmp_path):
    cfg = load_pretrain_config(None, tiny_overrides(tiny_pool, tmp_path / "run") + ["method.name=byol",
                                                                                     "data.gpu_augment=true"])
    views = METHODS["byol"](cfg).views()
    assert len(views.device_transforms) == 2 and set(views.transforms) == {"view0", "view1"}
    clip = views.transforms["view0"](torch.randint(0, 256, (4, 40, 40, 3), dtype=torch.uint8))
    assert clip.shape == (3, 4, 32, 32) and 0.0 <= clip.min() and clip.max() <= 1.0  # cropped, not normalised
    out = views.device_transforms[1](clip[None].repeat(2, 1, 1, 1, 1))
    assert out.shape == (2, 3, 4, 32, 32) and out.min() < 0.0  # normalised on the device side


def test_pretrain_with_gpu_augment_runs_on_cpu(tiny_pool, tiny_overrides, tmp_path):
    cfg = load_pretrain_config(None, tiny_overrides(tiny_pool, tmp_path / "run", frames=2) + ["data.gpu_augment=true"])
    run_dir = pretrain(cfg)
    with open(run_dir / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2]
