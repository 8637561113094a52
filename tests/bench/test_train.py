"""``videossl bench train``: every part once at tiny size, and the pieces it measures with (no timed assertions)."""
from __future__ import annotations

import argparse

import pytest
import torch

from videossl.bench import train as bench_train
from videossl.bench.peers import StepSpec, build_runner, count_clips, method_batch


def _parse(argv):
    parser = argparse.ArgumentParser()
    bench_train.add_arguments(parser)
    return parser.parse_args(argv)


def test_tiny_runs_every_part_and_writes_the_doc(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIDEOSSL_CACHE", str(tmp_path / "cache"))
    doc = tmp_path / "bench.md"
    assert bench_train.run(_parse(["--tiny", "--write-doc", str(doc)])) == 0
    text = doc.read_text()
    for section in ("## Training step", "## End-to-end data wait", "## Scaling", "## Cost against clip length"):
        assert section in text
    rows = [line.split("|") for line in text.splitlines() if line.startswith("| simclr | tiny_r3d |")]
    assert [r[3].strip() for r in rows] == ["ours", "pytorchvideo", "lightly"]
    assert rows[0][8].strip() != "-" and float(rows[0][8]) > 0  # ours' GFLOP/step
    assert all(r[6].strip().endswith("x") for r in rows[1:])  # ours / peer ratio for both peers
    assert "| 2 | 1 |" in text and "scaling efficiency" in text  # 2 DDP processes ran
    assert "| tiny_videomae | 4 | 32 |" in text and "failed" not in text


def test_unknown_names_are_user_errors():
    from videossl.errors import UserError

    with pytest.raises(UserError, match="unknown method 'simclrr'"):
        bench_train.run(_parse(["--methods", "simclrr", "--no-memory"]))
    with pytest.raises(UserError, match="--parts"):
        bench_train.run(_parse(["--parts", "step,speed"]))


@pytest.mark.parametrize("impl", ["ours", "pytorchvideo", "lightly"])
def test_every_runner_does_a_full_step_from_the_same_backbone(impl):
    spec = StepSpec("byol", "tiny_r3d", batch=2, frames=2, crop=32)
    runner = build_runner(impl, spec)
    reference = build_runner("ours", spec)
    backbone = runner.modules[0].backbone
    first = next(backbone.parameters())
    assert torch.equal(first, next(reference.modules[0].backbone.parameters()))  # same seed, same weights
    before = first.detach().clone()
    runner.step()
    assert not torch.equal(before, first)  # forward, loss, backward and the optimizer step all ran
    assert runner.clips_per_step == 4


def test_method_batch_follows_the_method_views(tmp_path, monkeypatch):
    from videossl.methods import METHODS

    monkeypatch.setenv("VIDEOSSL_CACHE", str(tmp_path / "cache"))
    cfg = bench_train_config("dino", "tiny_vit2d")
    method = METHODS["dino"](cfg)
    batch = method_batch(cfg, method, 3, "cpu")
    shapes = {tuple(v.shape) for v in batch["video"]}
    assert len(shapes) == 2 and all(s[0] == 3 for s in shapes)  # global and local crops, 3 samples each
    assert count_clips(batch) == 3 * len(batch["video"])


def bench_train_config(method, backbone):
    from videossl.bench.peers import build_config

    return build_config(StepSpec(method, backbone, batch=3, frames=1, crop=32))


def test_flops_counted_on_meta_match_a_real_step():
    from videossl.bench.measure import meta_flops, step_flops

    spec = StepSpec("byol", "tiny_r3d", batch=2, frames=4, crop=32)
    assert meta_flops(spec) == pytest.approx(step_flops(build_runner("ours", spec)), rel=1e-6)
    vit = StepSpec("simclr", "tiny_videomae", batch=2, frames=4, crop=32)
    assert meta_flops(vit) > step_flops(build_runner("ours", vit))  # CPU's flash SDPA has no FLOP formula


def test_activation_checkpointing_keeps_gradients_and_saves_less():
    from omegaconf import OmegaConf

    from videossl.bench.peers import build_config
    from videossl.engine.trainer import apply_runtime_options
    from videossl.methods import METHODS, StepInfo

    cfg = build_config(StepSpec("simclr", "tiny_videomae", batch=2, frames=4, crop=32))
    plain, checkpointed = METHODS["simclr"](cfg), METHODS["simclr"](cfg)
    checkpointed.load_state_dict(plain.state_dict())
    apply_runtime_options(checkpointed, OmegaConf.create(
        {"compile": False, "channels_last": True, "activation_checkpointing": True}))
    views = [torch.randn(2, 3, 4, 32, 32) for _ in range(2)]
    saved = {}
    for name, method in (("plain", plain), ("checkpointed", checkpointed)):
        count = [0]

        def pack(t, count=count):
            count[0] += t.numel()
            return t

        with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
            loss = method.training_step({"video": views}, StepInfo(0, 10, 0))["loss"]
        loss.backward()
        saved[name] = count[0]
    assert saved["checkpointed"] < saved["plain"]
    for a, b in zip(plain.parameters(), checkpointed.parameters()):
        torch.testing.assert_close(a.grad, b.grad)


def test_channels_last_reaches_the_encoder_and_the_ema_teacher():
    from omegaconf import OmegaConf

    from videossl.backbones.base import Backbone
    from videossl.bench.peers import build_config
    from videossl.engine.trainer import apply_runtime_options
    from videossl.methods import METHODS

    method = METHODS["byol"](build_config(StepSpec("byol", "tiny_r3d", batch=2, frames=2, crop=32)))
    apply_runtime_options(method, OmegaConf.create(
        {"compile": False, "channels_last": True, "activation_checkpointing": True}))  # a CNN: checkpointing skipped
    backbones = [m for m in method.modules() if isinstance(m, Backbone)]
    assert len(backbones) == 2 and all(b.memory_format is torch.channels_last_3d for b in backbones)
