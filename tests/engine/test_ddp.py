"""Two real CPU processes (gloo) through the `videossl pretrain` launch path: DDP via Fabric."""
import csv
import subprocess
import sys

import torch


def test_two_process_ddp_pretrain(tiny_pool, tiny_overrides, tmp_path):
    recipe = tmp_path / "simclr.yaml"
    recipe.write_text("method:\n  name: simclr\n")
    run_dir = tmp_path / "run"
    args = [sys.executable, "-m", "videossl.cli", "pretrain", str(recipe),
            *tiny_overrides(tiny_pool, run_dir, frames=2, steps=2),
            "train.batch_size=2", "train.devices=2", "train.strategy=ddp", "train.accelerator=cpu"]
    proc = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "Starting with 2 processes" in proc.stdout + proc.stderr
    with open(run_dir / "metrics.csv") as f:
        assert [int(r["step"]) for r in csv.DictReader(f)] == [1, 2]
    ckpt = torch.load(run_dir / "last.ckpt", weights_only=True)
    assert ckpt["step"] == 2
