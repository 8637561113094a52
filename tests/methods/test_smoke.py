"""Every method in METHODS trains for two steps through the real engine at T=1 (images) and T>1 (video)."""
import csv
import math

import pytest
import torch

from videossl.backbones import encoder_clip, load_encoder
from videossl.config import load_pretrain_config
from videossl.engine.trainer import pretrain
from videossl.methods import METHODS


@pytest.mark.parametrize("frames", [1, 4], ids=["T1", "T4"])
@pytest.mark.parametrize("name", list(METHODS))
def test_method_trains_two_steps(name, frames, tiny_pool, tiny_overrides, tmp_path):
    overrides = tiny_overrides(tiny_pool, tmp_path / "run", frames=frames,
                               extra=[f"method.name={name}", *METHODS[name].smoke_overrides])
    cfg = load_pretrain_config(None, overrides)
    torch.manual_seed(0)
    initial = METHODS[name](cfg).backbone.state_dict()
    run_dir = pretrain(cfg)

    with open(run_dir / "metrics.csv") as f:
        rows = list(csv.DictReader(f))
    assert [int(r["step"]) for r in rows] == [1, 2]
    assert all(math.isfinite(float(r["loss"])) for r in rows)
    for name_ in ("config.yaml", "last.ckpt", "encoder.pt", "loss.png", "lr.png"):
        assert (run_dir / name_).is_file(), name_
    encoder = load_encoder(run_dir / "encoder.pt")
    trained = encoder.state_dict()
    changed = [k for k in trained if trained[k].dtype.is_floating_point and not torch.equal(trained[k], initial[k])]
    assert changed, "two optimizer steps left the backbone unchanged"
    clip = encoder_clip(run_dir / "encoder.pt")  # what evaluation will use unless told otherwise
    assert (clip["num_frames"], clip["frame_stride"], clip["crop_size"]) == (
        cfg.data.num_frames, cfg.data.frame_stride, cfg.data.crop_size)
