"""Kill -9 a pretraining run three times at random steps and resume: same weights as an uninterrupted run.
Kill it in the middle of a checkpoint write: the previous checkpoint still loads. Fill the disk while writing a
checkpoint: a clear error, and the previous checkpoint is kept."""
import os
import signal
import time

import numpy as np
import pytest
import torch

from videossl import files
from videossl.config import load_pretrain_config
from videossl.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from videossl.engine.trainer import pretrain

STEPS = 14
KILL_BEFORE = STEPS - 4  # the last kill aims at most here: T=1 steps are fast, a kill can land a few steps late
FRAMES = 1  # T=1 keeps each step cheap; the resume logic is the same at any T


@pytest.fixture(scope="module")
def straight_run(tiny_pool, tmp_path_factory, tools):
    """An uninterrupted BYOL run (checkpoint every step) to compare the killed runs with."""
    root = tmp_path_factory.mktemp("straight")
    recipe = root / "byol.yaml"
    recipe.write_text("method:\n  name: byol\n")
    proc = tools.pretrain_process([str(recipe), "train.ckpt_every=1", *tools.tiny_args(tiny_pool, root / "run", STEPS, FRAMES)])
    assert proc.wait(timeout=900) == 0, proc.stderr.read()[-2000:]
    return recipe, load_checkpoint(root / "run" / "last.ckpt")


def assert_same_training_state(a, b):
    assert a["step"] == b["step"] == STEPS
    for key, value in a["model"].items():
        assert torch.equal(value, b["model"][key]), key
    for slot, state in a["optimizer"]["state"].items():
        for name, value in state.items():
            assert torch.equal(torch.as_tensor(value), torch.as_tensor(b["optimizer"]["state"][slot][name])), name


def checkpoint_step(run_dir):
    try:
        return load_checkpoint(run_dir / "last.ckpt")["step"]
    except CheckpointError:
        return 0


def test_three_sigkills_at_random_steps_then_resume(straight_run, tiny_pool, tmp_path, tools):
    recipe, straight = straight_run
    run_dir = tmp_path / "killed"
    args = [str(recipe), "train.ckpt_every=1", *tools.tiny_args(tiny_pool, run_dir, STEPS, FRAMES)]
    rng = np.random.default_rng(11)
    for kill in range(3):
        start = checkpoint_step(run_dir)
        # >= 1 step past the checkpoint (this process made progress), and room left so the run cannot finish first
        target = max(start + 1, min(start + int(rng.integers(2, 5)), KILL_BEFORE))
        proc = tools.pretrain_process(args + (["train.resume=auto"] if kill else []))
        deadline = time.time() + 600
        while tools.last_logged_step(run_dir) < target and proc.poll() is None and time.time() < deadline:
            time.sleep(0.01)
        time.sleep(float(rng.uniform(0.0, 0.3)))  # anywhere in the step: forward, backward, checkpoint write
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=60) == -signal.SIGKILL, f"kill {kill + 1}: the run ended first: {proc.stderr.read()}"
        assert start < checkpoint_step(run_dir) < STEPS
    proc = tools.pretrain_process(args + ["train.resume=auto"])
    assert proc.wait(timeout=900) == 0, proc.stderr.read()[-2000:]
    assert_same_training_state(straight, load_checkpoint(run_dir / "last.ckpt"))


# In the child: the 3rd write of last.ckpt stops halfway (half the bytes on disk, fsynced) and waits to be killed.
HALF_WRITE = """
import io, os, sys, time, torch
_real_save, _writes = torch.save, [0]
def _half_save(obj, f, *args, **kwargs):
    if ".last.ckpt.tmp-" in str(getattr(f, "name", f)):
        _writes[0] += 1
        if _writes[0] == 3:
            buffer = io.BytesIO()
            _real_save(obj, buffer, *args, **kwargs)
            f.write(buffer.getvalue()[: len(buffer.getvalue()) // 2]); f.flush(); os.fsync(f.fileno())
            sys.stderr.write("MID-WRITE\\n"); sys.stderr.flush()
            time.sleep(600)
    return _real_save(obj, f, *args, **kwargs)
torch.save = _half_save
"""


def test_sigkill_during_a_checkpoint_write_keeps_the_previous_one(straight_run, tiny_pool, tmp_path, tools):
    recipe, _ = straight_run
    run_dir = tmp_path / "killed"
    args = [str(recipe), "train.ckpt_every=1", *tools.tiny_args(tiny_pool, run_dir, STEPS, FRAMES)]
    proc = tools.pretrain_process(args, python_prelude=HALF_WRITE)
    lines = []
    for line in proc.stderr:  # blocks until the child reports it is mid-write (or exits)
        lines.append(line)
        if line.startswith("MID-WRITE"):
            break
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, "".join(lines)[-2000:]
    partial = list(run_dir.glob(".last.ckpt.tmp-*"))
    assert len(partial) == 1 and 0 < partial[0].stat().st_size
    with pytest.raises(CheckpointError):
        load_checkpoint(partial[0])  # the half-written file is garbage ...
    previous = load_checkpoint(run_dir / "last.ckpt")  # ... and the previous checkpoint is intact
    assert previous["step"] == 2
    save_checkpoint(previous, run_dir / "last.ckpt")  # the next write (here by this process) ...
    assert not list(run_dir.glob(".last.ckpt.tmp-*"))  # ... removes the dead writer's temp file


def test_full_disk_during_a_checkpoint_write(tiny_pool, tmp_path, tools, monkeypatch):
    """ENOSPC from the kernel without privileges: the temp file the writer opens is a symlink to /dev/full."""
    if not os.path.exists("/dev/full"):
        pytest.skip("no /dev/full on this system")
    run_dir = tmp_path / "run"
    overrides = ["method.name=simclr", "train.ckpt_every=1"]
    pretrain(load_pretrain_config(None, overrides + tools.tiny_args(tiny_pool, run_dir, 2, frames=1)))
    before = (run_dir / "last.ckpt").read_bytes()
    trap = run_dir / f".last.ckpt.tmp-{os.getpid()}-trap"
    trap.symlink_to("/dev/full")
    real_temp_name = files._temp_name
    monkeypatch.setattr(files, "_temp_name", lambda p: trap if p.name == "last.ckpt" else real_temp_name(p))
    cfg = load_pretrain_config(None, overrides + tools.tiny_args(
        tiny_pool, run_dir, 4, frames=1, extra=["train.resume=auto", "train.resume_allow_changes=[train.max_steps]"]))
    with pytest.raises(CheckpointError, match=r"could not write checkpoint .*last.ckpt: No space left on device; "
                                              r"the previous checkpoint is kept"):
        pretrain(cfg)
    assert (run_dir / "last.ckpt").read_bytes() == before
    assert load_checkpoint(run_dir / "last.ckpt")["step"] == 2
    assert not trap.exists() and not trap.is_symlink()
