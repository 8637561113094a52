"""Schedules, EMA, checkpoints and the resumable sampler."""
import pickle

import pytest
import torch
from torch import nn

from videossl.data.loader import ResumableDistributedSampler
from videossl.engine.checkpoint import CheckpointError, load_checkpoint, save_checkpoint
from videossl.nn.ema import EMATeacher
from videossl.engine.monitor import collapse_stats
from videossl.nn.schedules import cosine_schedule


def test_cosine_schedule_with_warmup():
    assert cosine_schedule(0, 100, 1.0, 0.0, warmup_steps=10) == 0.0
    assert cosine_schedule(5, 100, 1.0, 0.0, warmup_steps=10) == pytest.approx(0.5)
    assert cosine_schedule(10, 100, 1.0, 0.0, warmup_steps=10) == pytest.approx(1.0)
    assert cosine_schedule(55, 100, 1.0, 0.0, warmup_steps=10) == pytest.approx(0.5)
    assert cosine_schedule(100, 100, 1.0, 0.1, warmup_steps=10) == pytest.approx(0.1)
    # increasing schedules (EMA momentum 0.99 -> 1)
    assert cosine_schedule(50, 100, 0.99, 1.0) == pytest.approx(0.995)


def test_ema_teacher_update():
    student = nn.Linear(3, 2)
    teacher = EMATeacher(student)
    assert all(not p.requires_grad for p in teacher.parameters())
    before = teacher.module.weight.clone()
    with torch.no_grad():
        student.weight.add_(1.0)
    teacher.update(student, momentum=0.75)
    assert torch.allclose(teacher.module.weight, 0.75 * before + 0.25 * student.weight)


def test_checkpoint_roundtrip_and_atomicity(tmp_path):
    path = tmp_path / "last.ckpt"
    save_checkpoint({"w": torch.ones(3), "step": 4}, path)
    assert load_checkpoint(path)["step"] == 4
    assert [p.name for p in tmp_path.iterdir()] == ["last.ckpt"]  # no temp file left behind


class Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_malicious_pickle_is_refused(tmp_path):
    path = tmp_path / "evil.ckpt"
    with open(path, "wb") as f:
        pickle.dump({"model": Evil()}, f)
    with pytest.raises(CheckpointError, match="refusing to load .*evil.ckpt"):
        load_checkpoint(path)


def test_sampler_resumes_mid_epoch_and_shards():
    full = list(ResumableDistributedSampler(20, 4, seed=3))
    s = ResumableDistributedSampler(20, 4, seed=3)
    s.set_epoch(0, start_batch=2)
    assert list(s) == full[2:]
    ranks = [list(ResumableDistributedSampler(20, 2, seed=3, rank=r, world_size=2)) for r in range(2)]
    seen = [i for r in ranks for batch in r for i, _ in batch]
    assert sorted(seen) == list(range(20))
    s.set_epoch(1)
    assert list(s) != full  # reshuffled per epoch


def test_collapse_stats_detect_collapse():
    g = torch.Generator().manual_seed(0)
    healthy = collapse_stats(torch.randn(256, 32, generator=g))
    collapsed = collapse_stats(torch.ones(256, 32) + 1e-4 * torch.randn(256, 32, generator=g))
    assert healthy["emb_std"] > 0.8 and collapsed["emb_std"] < 0.05
    assert healthy["emb_rank"] > 25


def test_sync_batchnorm_converts_every_bn_under_gpu_ddp_only(caplog):
    from videossl.config import load_pretrain_config
    from videossl.engine.trainer import sync_batchnorm
    from videossl.methods import METHODS

    torch.manual_seed(0)
    cfg = load_pretrain_config(None, ["method.name=byol", "backbone.name=tiny_r3d", "data.num_frames=4", "data.crop_size=32"])
    method = METHODS["byol"](cfg)
    bn = [n for n, m in method.named_modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    assert bn and any("backbone" in n for n in bn) and any("backbone" not in n for n in bn)  # encoder and heads
    params = {n: p.data_ptr() for n, p in method.named_parameters()}
    assert sync_batchnorm(method, True, 1, "cuda") is method  # one process: unchanged
    assert sync_batchnorm(method, False, 4, "cuda") is method
    with caplog.at_level("WARNING", logger="videossl.train"):
        assert sync_batchnorm(method, True, 2, "cpu") is method  # gloo: no CPU SyncBatchNorm in torch
    assert "no SyncBatchNorm on CPU" in caplog.text
    converted = sync_batchnorm(method, True, 2, "cuda")
    kinds = {n: type(m) for n, m in converted.named_modules()}
    assert all(kinds[n] is nn.SyncBatchNorm for n in bn)  # every BN, teacher included
    assert {n: p.data_ptr() for n, p in converted.named_parameters()} == params  # same parameters (optimizer, EMA)


def test_a_batch_larger_than_the_dataset_is_a_user_error_naming_the_key():
    from videossl.errors import UserError

    with pytest.raises(UserError, match="8 samples, fewer than one global batch .train.batch_size=4 x 3 processes"):
        ResumableDistributedSampler(8, 4, world_size=3)
