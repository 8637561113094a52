"""A run killed with SIGKILL and resumed with resume=auto ends with the same weights as an uninterrupted run."""
import csv
import os
import signal
import subprocess
import sys
import time

import torch

STEPS = 14


def run_cli(args, **kw):
    env = dict(os.environ, OMP_NUM_THREADS="1")
    return subprocess.Popen([sys.executable, "-m", "videossl.cli", "pretrain", *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, **kw)


def logged_steps(run_dir):
    try:
        with open(run_dir / "metrics.csv") as f:
            return len(list(csv.DictReader(f)))
    except (FileNotFoundError, StopIteration):
        return 0


def test_sigkill_and_resume_gives_identical_weights(tiny_pool, tiny_overrides, tmp_path):
    recipe = tmp_path / "byol.yaml"
    recipe.write_text("method:\n  name: byol\n")  # BYOL: EMA teacher and momentum schedule must resume too
    base = [str(recipe), "train.ckpt_every=1"]
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    proc = run_cli(base + tiny_overrides(tiny_pool, straight, frames=2, steps=STEPS))
    assert proc.wait(timeout=600) == 0, proc.stderr.read()

    proc = run_cli(base + tiny_overrides(tiny_pool, killed, frames=2, steps=STEPS))
    deadline = time.time() + 600
    while logged_steps(killed) < 4 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "the run finished before it could be killed"
    ckpt = torch.load(killed / "last.ckpt", weights_only=True)
    assert 0 < ckpt["step"] < STEPS

    proc = run_cli(base + tiny_overrides(tiny_pool, killed, frames=2, steps=STEPS) + ["train.resume=auto"])
    assert proc.wait(timeout=600) == 0, proc.stderr.read()

    a = torch.load(straight / "last.ckpt", weights_only=True)
    b = torch.load(killed / "last.ckpt", weights_only=True)
    assert a["step"] == b["step"] == STEPS
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
