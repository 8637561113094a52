"""V-JEPA as a method (videossl/methods/vjepa.py). The smoke test (tests/methods/test_smoke.py) trains it at T=1 and
T=4 and tests/reliability/test_resume_every_method.py resumes it bit for bit; here: the target encoder takes no
gradient and follows the EMA schedule, the predictor's inputs, the saved encoders, user errors, and two gloo processes
giving the loss and gradients of one process with the whole batch."""
import os
import socket
import time
from datetime import timedelta

import pytest
import torch
import torch.multiprocessing as mp
from omegaconf import OmegaConf

from videossl.backbones import load_encoder
from videossl.config import load_pretrain_config
from videossl.engine.trainer import pretrain
from videossl.errors import UserError
from videossl.methods import METHODS, StepInfo
from videossl.transforms.masks import mask_counts, multiblock_mask, sample_block_shape

TINY = ["method.name=vjepa", "backbone.name=tiny_videomae", "data.num_frames=4", "data.crop_size=32"]
WORLD, B = 2, 3
TIMEOUT_S = 180


def build(*extra):
    torch.manual_seed(0)
    return METHODS["vjepa"](load_pretrain_config(None, [*TINY, *extra]))


def fixed_inputs():
    """Clips ``(WORLD * B, 3, 4, 32, 32)`` and one target mask per set whose per-sample counts differ between the two
    halves of the batch, so each process's own minimum differs from the global one."""
    gen = torch.Generator().manual_seed(7)
    clips = torch.randn(WORLD * B, 3, 4, 32, 32, generator=gen)
    specs = METHODS["vjepa"]._mask_specs(OmegaConf.structured(METHODS["vjepa"].Config()))
    grid = (2, 4, 4)
    for seed in range(100):
        gen = torch.Generator().manual_seed(seed)
        masks = [multiblock_mask(WORLD * B, grid, s, sample_block_shape(grid, s, gen), generator=gen).flatten(1)
                 for s in specs]
        halves = [[mask_counts(m[r * B:(r + 1) * B]) for r in range(WORLD)] for m in masks]
        if all(h[0] != h[1] for h in halves):
            return clips, masks
    raise AssertionError("no seed gives different per-process mask counts")


def loss_and_grads(method, clips, masks):
    method.zero_grad(set_to_none=True)
    out = method.masked_prediction(clips, masks)
    out["loss"].backward()
    grads = {n: p.grad.detach().clone() for n, p in method.named_parameters() if p.grad is not None}
    return out["loss"].detach(), grads


def test_target_encoder_gets_no_gradient_and_follows_the_linear_ema():
    method = build()
    clips, masks = fixed_inputs()
    _, grads = loss_and_grads(method, clips, masks)
    assert all(not p.requires_grad and p.grad is None for p in method.target.parameters())
    assert not any(name.startswith("target.") for name in grads)
    assert any(name.startswith("backbone.") for name in grads) and any(name.startswith("predictor.") for name in grads)
    assert grads["predictor.mask_tokens"].abs().sum(dim=1).gt(0).all()  # each mask set trains its own token

    before = [p.detach().clone() for p in method.target.parameters()]
    with torch.no_grad():
        for p in method.backbone.parameters():
            p.add_(1.0)
    method.on_after_optimizer_step(StepInfo(0, 100, 0))  # momentum 0.998 at step 0
    after = list(method.target.parameters())
    assert all(torch.allclose(a, b + 0.002 * (s.detach() - b), atol=1e-6)
               for a, b, s in zip(after, before, method.backbone.parameters()))


def test_momentum_rises_linearly_over_1_25_times_training(monkeypatch):
    method = build()
    seen = []
    monkeypatch.setattr(method.target, "update", lambda student, momentum: seen.append(momentum))
    for step in (0, 50, 100):
        method.on_after_optimizer_step(StepInfo(step, 100, 0))
    assert seen == pytest.approx([0.998, 0.998 + 0.002 * 50 / 125, 0.998 + 0.002 * 100 / 125])


def test_masks_come_from_both_sets_and_the_step_seeds_the_block_shapes():
    method = build()
    grid = (2, 4, 4)
    torch.manual_seed(1)
    first = method.sample_masks(4, grid, step=5)
    torch.manual_seed(2)
    second = method.sample_masks(4, grid, step=5)
    assert len(first) == 2 and all(m.shape == (4, 32) and m.dtype == torch.bool for m in first)
    assert all(m.any(dim=1).all() and not m.all(dim=1).any() for m in first)  # a target and a context per sample
    assert any(not torch.equal(a, b) for a, b in zip(first, second))  # positions: torch's global RNG

    one_block = build("method.short_range_blocks=1", "method.long_range_blocks=1",
                      "method.short_range_scale=[0.1,0.5]", "method.aspect_ratio=[0.5,2.0]")
    grid = (1, 8, 8)

    def box_shapes(step, seed):
        torch.manual_seed(seed)  # another global RNG state, as on another process
        shapes = set()
        for mask in one_block.sample_masks(8, grid, step):
            for sample in mask.view(8, 8, 8):
                rows, cols = torch.nonzero(sample, as_tuple=True)
                shapes.add((int(rows.max() - rows.min() + 1), int(cols.max() - cols.min() + 1)))
        return shapes

    assert box_shapes(3, seed=1) == box_shapes(3, seed=2)  # the step alone fixes the block shapes
    assert len(box_shapes(3, seed=1)) <= 2  # one shape per mask set and batch
    assert len({frozenset(box_shapes(step, seed=0)) for step in range(6)}) > 1  # and the step changes them


def test_training_run_saves_the_context_and_the_target_encoder(tiny_pool, tiny_overrides, tmp_path):
    cfg = load_pretrain_config(None, tiny_overrides(tiny_pool, tmp_path / "run", frames=2,
                                                    extra=["method.name=vjepa", "backbone.name=tiny_videomae"]))
    run_dir = pretrain(cfg)
    student, teacher = load_encoder(run_dir / "encoder.pt"), load_encoder(run_dir / "encoder_teacher.pt")
    s, t = student.state_dict(), teacher.state_dict()
    assert s.keys() == t.keys()
    assert any(not torch.equal(s[k], t[k]) for k in s if s[k].dtype.is_floating_point)  # EMA lags the student


def test_user_errors_name_the_setting():
    with pytest.raises(UserError, match="ViT backbone"):
        build("backbone.name=tiny_timesformer")
    with pytest.raises(UserError, match="ViT backbone"):
        build("backbone.name=tiny_r3d")
    with pytest.raises(UserError, match="pred_heads"):
        build("method.pred_dim=30", "method.pred_heads=4")
    with pytest.raises(UserError, match="short_range"):
        build("method.short_range_scale=[0.5,0.2]")
    with pytest.raises(UserError, match="data.num_frames"):
        build().training_step({"video": [torch.randn(2, 3, 3, 32, 32)]}, StepInfo(0, 1, 0))


# ---------------------------------------------------------------- two processes = one process (gloo, CPU)


def _worker(rank: int, port: int, out_dir: str):
    import torch.distributed as dist

    torch.set_num_threads(1)
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port))
    dist.init_process_group("gloo", rank=rank, world_size=WORLD, timeout=timedelta(seconds=60))
    try:
        clips, masks = fixed_inputs()
        part = slice(rank * B, (rank + 1) * B)
        result = loss_and_grads(build(), clips[part], [m[part] for m in masks])
        torch.save(result, os.path.join(out_dir, f"rank{rank}.pt"))
    finally:
        dist.destroy_process_group()


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_two_processes_equal_one_process(tmp_path):
    ctx = mp.start_processes(_worker, args=(_free_port(), str(tmp_path)), nprocs=WORLD, join=False,
                             start_method="spawn")
    deadline = time.monotonic() + TIMEOUT_S
    while not ctx.join(timeout=5):
        if time.monotonic() > deadline:
            for p in ctx.processes:
                p.kill()
            pytest.fail(f"2-process gloo run did not finish in {TIMEOUT_S} s")
    per_rank = [torch.load(tmp_path / f"rank{r}.pt") for r in range(WORLD)]

    clips, masks = fixed_inputs()
    method = build()
    ref_loss, ref_grads = loss_and_grads(method, clips, masks)
    mean_loss = sum(loss for loss, _ in per_rank) / WORLD
    assert torch.allclose(mean_loss, ref_loss, atol=1e-6), (mean_loss, ref_loss)
    assert set(per_rank[0][1]) == set(ref_grads)
    for name, ref in ref_grads.items():
        mean_grad = sum(grads[name] for _, grads in per_rank) / WORLD  # what DDP's gradient averaging computes
        assert torch.allclose(mean_grad, ref, atol=1e-6, rtol=1e-4), (name, (mean_grad - ref).abs().max())

    # without the all-reduced minimum each process would cut its masks to its own counts: another loss
    local = [loss_and_grads(method, clips[r * B:(r + 1) * B], [m[r * B:(r + 1) * B] for m in masks])[0]
             for r in range(WORLD)]
    assert not torch.allclose(sum(local) / WORLD, ref_loss, atol=1e-6)
