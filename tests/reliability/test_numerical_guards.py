"""NaN/Inf losses skip the step with a warning; five in a row stop the run with a clear message and leave a
checkpoint from before the failure; the collapse monitor warns on collapsed embeddings."""
import logging

import pytest
import torch

from videossl.config import load_pretrain_config
from videossl.engine.checkpoint import load_checkpoint
from videossl.engine.trainer import MAX_BAD_STEPS, pretrain
from videossl.errors import UserError
from videossl.methods.simclr import SimCLR


def patch_simclr(monkeypatch, bad_calls, constant_embedding=False, poison_weights=False):
    """Wrap SimCLR.training_step: calls whose number is in ``bad_calls`` return a NaN (odd) or +Inf (even) loss.
    Returns a record with the weights seen at the first bad call (the state before the failure)."""
    original = SimCLR.training_step
    record = {"calls": 0, "before_failure": None}

    def training_step(self, batch, step):
        record["calls"] += 1
        out = original(self, batch, step)
        if constant_embedding:
            out["embedding"] = torch.ones_like(out["embedding"])
        if record["calls"] in bad_calls:
            if record["before_failure"] is None:
                # parameters only: the skipped forwards still move BN running statistics (documented)
                record["before_failure"] = {k: v.detach().clone() for k, v in self.named_parameters()}
                record["step"] = step.step
            if poison_weights:
                with torch.no_grad():
                    next(self.backbone.parameters()).fill_(float("nan"))
            out["loss"] = out["loss"] * (float("nan") if record["calls"] % 2 else float("inf"))
        return out

    monkeypatch.setattr(SimCLR, "training_step", training_step)
    return record


def config(pool, run_dir, tiny_overrides, steps, extra=()):
    return load_pretrain_config(None, ["method.name=simclr", *tiny_overrides(pool, run_dir, frames=1, steps=steps,
                                                                              extra=("train.plots=false", *extra))])


def test_isolated_bad_losses_are_skipped_and_collapse_warns(monkeypatch, caplog, tiny_pool, tiny_overrides, tmp_path):
    record = patch_simclr(monkeypatch, bad_calls={2, 4}, constant_embedding=True)
    caplog.set_level(logging.WARNING, logger="videossl.train")
    run_dir = pretrain(config(tiny_pool, tmp_path / "run", tiny_overrides, steps=3))
    assert record["calls"] == 5  # 3 optimizer steps + 2 skipped batches
    skipped = [r.getMessage() for r in caplog.records if "non-finite loss" in r.getMessage()]
    assert len(skipped) == 2 and "step skipped" in skipped[0]
    assert any("collapsing" in r.getMessage() for r in caplog.records)
    ckpt = load_checkpoint(run_dir / "last.ckpt")
    assert ckpt["step"] == 3
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_bad_losses_in_a_row_stop_with_the_state_before_the_failure(monkeypatch, tiny_pool, tiny_overrides, tmp_path):
    record = patch_simclr(monkeypatch, bad_calls=set(range(3, 100)))  # steps 0, 1 fine, then NaN/Inf forever
    with pytest.raises(UserError, match=f"{MAX_BAD_STEPS} non-finite losses in a row at step 2: stopping; the last "
                                        "good checkpoint is .*last.ckpt"):
        pretrain(config(tiny_pool, tmp_path / "run", tiny_overrides, steps=10))
    assert record["calls"] == 2 + MAX_BAD_STEPS
    ckpt = load_checkpoint(tmp_path / "run" / "last.ckpt")
    assert ckpt["step"] == record["step"] == 2
    for key, value in record["before_failure"].items():
        assert torch.equal(ckpt["model"][key], value), key


def test_poisoned_weights_keep_the_previous_checkpoint(monkeypatch, tiny_pool, tiny_overrides, tmp_path):
    patch_simclr(monkeypatch, bad_calls=set(range(3, 100)), poison_weights=True)
    with pytest.raises(UserError, match="non-finite losses in a row at step 2.*last good checkpoint"):
        pretrain(config(tiny_pool, tmp_path / "run", tiny_overrides, steps=10, extra=("train.ckpt_every=1",)))
    ckpt = load_checkpoint(tmp_path / "run" / "last.ckpt")
    assert ckpt["step"] == 2  # written after step 2, not overwritten by the NaN state
    assert all(torch.isfinite(v).all() for v in ckpt["model"].values() if v.is_floating_point())


def test_no_checkpoint_to_keep_is_said_plainly(monkeypatch, tiny_pool, tiny_overrides, tmp_path):
    patch_simclr(monkeypatch, bad_calls=set(range(1, 100)), poison_weights=True)
    with pytest.raises(UserError, match="no checkpoint was written before the failure"):
        pretrain(config(tiny_pool, tmp_path / "run", tiny_overrides, steps=10))
