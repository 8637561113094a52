"""Exact resume for every method (issue 20 item 3): a run stopped right after its step-k checkpoint and resumed with
``train.resume=auto`` ends bit-identical to an uninterrupted run -- model, optimizer, RNG state -- for every entry
of ``METHODS``, across an epoch boundary. The in-process "kill" raises right after ``last.ckpt`` is written (the
rest of that step's files, e.g. ``encoder.pt``, are not), so ``pretrain`` unwinds as after an error; the second
test kills a real process with SIGKILL while two dataloader workers run.

Tiny settings (T=1, 32 px, batch 4, no workers): the synthetic pool has 12 training videos, i.e. 3 batches per
epoch, so the resume from step 2 starts mid-epoch and crosses the epoch boundary after step 3.
"""
import os
import signal
import time

import pytest
import torch

import videossl.engine.trainer as trainer
from videossl.config import load_pretrain_config
from videossl.engine.checkpoint import load_checkpoint
from videossl.files import RunDirLock
from videossl.methods import METHODS

STEPS = 4  # epoch 0 = steps 1-3, epoch 1 starts at step 4
KILL_AFTER = 2  # mid-epoch; the resumed process creates its loader iterator there, then again at the boundary
# Compared between the runs: everything the next step depends on. Not "config" (it holds train.resume) nor the
# descriptive labels (write time, versions).
COMPARED = ("model", "optimizer", "rng", "step", "epoch", "batch_in_epoch", "total_steps")


class SimulatedKill(Exception):
    """Raised by the patched save_checkpoint right after the step-k checkpoint is on disk."""


def differences(a, b, where=""):
    """Paths at which two checkpoint trees differ: tensors must be torch.equal with the same dtype and shape."""
    if torch.is_tensor(a) or torch.is_tensor(b):
        if not (torch.is_tensor(a) and torch.is_tensor(b)):
            return [f"{where}: tensor vs {type(b if torch.is_tensor(a) else a).__name__}"]
        if a.dtype != b.dtype or a.shape != b.shape or not torch.equal(a, b):
            return [where]
        return []
    if isinstance(a, dict) and isinstance(b, dict):
        if a.keys() != b.keys():
            return [f"{where}: keys {sorted(map(str, a.keys() ^ b.keys()))}"]
        return [d for k in a for d in differences(a[k], b[k], f"{where}/{k}")]
    if isinstance(a, (list, tuple)) and isinstance(b, (list, tuple)):
        if len(a) != len(b):
            return [f"{where}: length {len(a)} vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in differences(x, y, f"{where}[{i}]")]
    return [] if a == b or (a != a and b != b) else [f"{where}: {a!r} vs {b!r}"]  # a != a: NaN


def assert_same_state(straight, resumed, steps):
    assert straight["step"] == resumed["step"] == steps
    diff = [d for key in COMPARED for d in differences(straight[key], resumed[key], key)]
    assert not diff, f"{len(diff)} entries differ after the resume, e.g. {diff[:8]}"


@pytest.mark.parametrize("name", list(METHODS))
def test_stop_after_checkpoint_and_resume_is_bit_identical(name, tiny_pool, tiny_overrides, tmp_path, monkeypatch):
    def overrides(run_dir, *more):
        extra = [f"method.name={name}", f"train.ckpt_every={KILL_AFTER}", "train.plots=false",
                 *METHODS[name].smoke_overrides, *more]
        return tiny_overrides(tiny_pool, run_dir, frames=1, steps=STEPS, extra=extra)

    straight_dir, stopped_dir = tmp_path / "straight", tmp_path / "stopped"
    trainer.pretrain(load_pretrain_config(None, overrides(straight_dir)))

    real_save = trainer.save_checkpoint

    def save_then_die(state, path):
        real_save(state, path)
        if state["step"] == KILL_AFTER:
            raise SimulatedKill(state["step"])

    monkeypatch.setattr(trainer, "save_checkpoint", save_then_die)
    with pytest.raises(SimulatedKill):
        trainer.pretrain(load_pretrain_config(None, overrides(stopped_dir)))
    monkeypatch.setattr(trainer, "save_checkpoint", real_save)
    assert load_checkpoint(stopped_dir / "last.ckpt")["step"] == KILL_AFTER

    torch.manual_seed(1234)  # the resumed process starts from an unrelated global RNG state
    trainer.pretrain(load_pretrain_config(None, overrides(stopped_dir, "train.resume=auto")))

    assert_same_state(load_checkpoint(straight_dir / "last.ckpt"), load_checkpoint(stopped_dir / "last.ckpt"), STEPS)


def test_writing_a_checkpoint_draws_no_random_numbers(tiny_pool, tiny_overrides, tmp_path):
    """What a checkpoint write asks a method for (state_dict, encoder_spec, extra_encoders) leaves the global RNG
    alone: the checkpoint stores the RNG state of before the write, so a draw there would be replayed differently
    after a resume (AVE-Net built its throwaway avc_head with fresh random layers each time) and training would
    depend on train.ckpt_every."""
    moved = []
    for name in METHODS:
        cfg = load_pretrain_config(None, tiny_overrides(tiny_pool, tmp_path / name, frames=1, extra=[
            f"method.name={name}", *METHODS[name].smoke_overrides]))
        method = METHODS[name](cfg)
        before = torch.get_rng_state()
        method.state_dict(), method.encoder_spec(), method.extra_encoders()
        if not torch.equal(before, torch.get_rng_state()):
            moved.append(name)
    assert not moved, f"writing a checkpoint draws from the global torch RNG for {moved}"


class _WorkerSeeds(torch.utils.data.Dataset):
    """Each item is the torch seed of the process that loads it (a worker's is the loader's base seed + its id)."""

    def __len__(self):
        return 8

    def __getitem__(self, key):
        return torch.initial_seed()


def test_the_loader_leaves_the_global_rng_alone_and_seeds_workers_from_seed_and_epoch():
    from videossl.data.loader import build_train_loader

    def epoch_seeds(loader, sampler, epochs):
        seeds = []
        for epoch in epochs:
            sampler.set_epoch(epoch)
            seeds.append(sorted({int(s) for batch in loader for s in batch}))
        return seeds

    before = torch.get_rng_state()
    loader, sampler = build_train_loader(_WorkerSeeds(), 2, seed=7, num_workers=0)
    epoch_seeds(loader, sampler, [0, 1, 2])  # a new iterator every epoch
    assert torch.equal(before, torch.get_rng_state()), "iterating the loader drew from the global torch RNG"

    def fresh():
        return build_train_loader(_WorkerSeeds(), 2, seed=7, num_workers=1, persistent_workers=False)

    straight = epoch_seeds(*fresh(), [0, 1, 2])
    assert straight[1] != straight[2]
    assert epoch_seeds(*fresh(), [1, 2]) == straight[1:]  # a process resumed in epoch 1 seeds its workers alike
    assert torch.equal(before, torch.get_rng_state())


JIGSAW_STEPS = 8  # three epochs at 3 batches each


def test_jigsaw_sigkill_with_two_workers_resumes_bit_identical(tiny_pool, tmp_path, tools):
    """Jigsaw draws its permutations from the global torch RNG in training_step; the loader's two (persistent)
    workers start once in the uninterrupted run and again in the resumed process."""
    recipe = tmp_path / "jigsaw.yaml"
    recipe.write_text("method:\n  name: jigsaw\n")

    def args(run_dir, *more):
        return [str(recipe), "train.ckpt_every=1", *tools.tiny_args(
            tiny_pool, run_dir, JIGSAW_STEPS, frames=1, extra=["data.num_workers=2", "data.prefetch_factor=2", *more])]

    straight_dir, killed_dir = tmp_path / "straight", tmp_path / "killed"
    proc = tools.pretrain_process(args(straight_dir))
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]

    proc = tools.pretrain_process(args(killed_dir))
    deadline = time.time() + 600
    while tools.last_logged_step(killed_dir) < 2 and proc.poll() is None and time.time() < deadline:
        time.sleep(0.01)
    os.kill(proc.pid, signal.SIGKILL)
    assert proc.wait(timeout=60) == -signal.SIGKILL, f"the run ended before the kill: {proc.stderr.read()[-2000:]}"
    assert 0 < load_checkpoint(killed_dir / "last.ckpt")["step"] < JIGSAW_STEPS
    # at once: the killed run's forked workers may still be alive, but they do not hold its POSIX lock
    RunDirLock(killed_dir).acquire().release()

    proc = tools.pretrain_process(args(killed_dir, "train.resume=auto"))
    assert proc.wait(timeout=600) == 0, proc.stderr.read()[-2000:]

    assert_same_state(load_checkpoint(straight_dir / "last.ckpt"), load_checkpoint(killed_dir / "last.ckpt"),
                      JIGSAW_STEPS)
