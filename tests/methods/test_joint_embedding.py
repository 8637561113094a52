"""Method-level behaviour of the joint-embedding family and MAE that the 2-step smoke test cannot see: queues,
shuffled BN, prototype freezing and normalisation, DINO's teacher temperature and center, MAE's masking."""

import pytest
import torch

from videossl import recipes_dir
from videossl.config import load_pretrain_config
from videossl.methods import METHODS, StepInfo

RECIPES = recipes_dir()
MINE = ("moco_v2", "moco_v3", "simsiam", "swav", "dino", "barlow_twins", "vicreg", "nnclr", "mae")


def build(name, *overrides, frames=1):
    cfg = load_pretrain_config(None, [f"method.name={name}", f"data.num_frames={frames}", "data.crop_size=32",
                                      *METHODS[name].smoke_overrides, *overrides])
    return METHODS[name](cfg)


def clips(n_views=2, batch=4, frames=1, size=32):
    return [torch.randn(batch, 3, frames, size, size) for _ in range(n_views)]


@pytest.mark.parametrize("recipe", sorted(p.name for p in RECIPES.glob("*.yaml") if p.name.split("_synthetic")[0]
                                          .split("_k400")[0] in MINE))
def test_recipes_load(recipe):
    cfg = load_pretrain_config(RECIPES / recipe)
    assert cfg.method.name in MINE


def test_moco_v2_queue_is_a_ring_buffer_of_keys():
    m = build("moco_v2", "method.queue_size=6", "method.proj_dim=4")
    m.enqueue(torch.ones(4, 4))
    m.enqueue(2 * torch.ones(4, 4))
    assert int(m.queue_ptr) == 2
    assert torch.equal(m.queue[:, 0], torch.tensor([2.0, 2.0, 1.0, 1.0, 2.0, 2.0]))


def test_moco_v2_shuffled_bn_keys():
    m = build("moco_v2")
    x = torch.randn(4, 3, 1, 32, 32)
    step = StepInfo(3, 10, 0)
    # One BN group on one process: shuffling then un-shuffling gives exactly the plain key-encoder output.
    assert torch.allclose(m._keys(x, step), m.key_encoder(x), atol=1e-5)
    # Two groups: each half of a shuffled batch normalised on its own (MoCo's SplitBatchNorm) -> different keys.
    m.hparams.key_bn_splits = 2
    assert not torch.allclose(m._keys(x, step), m.key_encoder(x), atol=1e-3)


def test_moco_v2_step_enqueues_and_updates_key_encoder():
    m = build("moco_v2", "method.queue_size=8")
    out = m.training_step({"video": clips()}, StepInfo(0, 10, 0))
    out["loss"].backward()
    before = m.queue.clone()
    with torch.no_grad():
        next(m.projector.parameters()).add_(1.0)  # pretend the optimizer moved the encoder
    m.on_after_optimizer_step(StepInfo(0, 10, 0))
    assert int(m.queue_ptr) == 4 and not torch.equal(m.queue[:4], before[:4]) and torch.equal(m.queue[4:], before[4:])
    key_param = next(m.key_encoder.module[1].parameters())
    assert not torch.equal(key_param, next(m.projector.parameters()))  # an EMA, not a copy
    assert all(not p.requires_grad for p in m.key_encoder.parameters())


def test_swav_prototypes_frozen_then_trained_and_normalised():
    m = build("swav", "method.freeze_prototypes_iters=5", "method.num_local=2")
    views = clips(2) + clips(2, size=16)
    m.training_step({"video": views}, StepInfo(0, 10, 0))["loss"].backward()
    assert m.prototypes.weight.grad is not None and m.prototypes.weight.grad.abs().sum() == 0
    assert next(m.backbone.parameters()).grad.abs().sum() > 0
    m.zero_grad()
    m.training_step({"video": views}, StepInfo(5, 10, 0))["loss"].backward()
    assert m.prototypes.weight.grad.abs().sum() > 0
    with torch.no_grad():
        m.prototypes.weight.mul_(3.0)
    m.on_after_optimizer_step(StepInfo(5, 10, 0))
    assert torch.allclose(m.prototypes.weight.norm(dim=1), torch.ones(m.prototypes.weight.shape[0]), atol=1e-5)


def test_swav_queue_fills_with_global_projections():
    m = build("swav", "method.queue_length=6", "method.queue_start_epoch=0", "method.num_local=0")
    m.training_step({"video": clips(2)}, StepInfo(0, 10, 0))
    assert int(m.queue_filled) == 4 and m.queue[:, 4:].abs().sum() == 0
    out = m.training_step({"video": clips(2)}, StepInfo(1, 10, 0))  # now with 4 queued rows in Sinkhorn
    assert int(m.queue_filled) == 6 and torch.isfinite(out["loss"])


def test_dino_teacher_temperature_warmup_and_center():
    m = build("dino", "method.warmup_teacher_temp=0.04", "method.teacher_temp=0.07", "method.teacher_temp_warmup=0.5",
              "method.num_local=2")
    temps = [m.teacher_temperature(StepInfo(s, 10, 0)) for s in (0, 2, 5, 9)]
    assert temps == pytest.approx([0.04, 0.052, 0.07, 0.07])
    views = clips(2) + clips(2, size=16)
    out = m.training_step({"video": views}, StepInfo(0, 10, 0))
    assert m.center.abs().sum() > 0  # moved towards the teacher's batch mean
    out["loss"].backward()
    assert all(p.grad is None for p in m.teacher.parameters())
    assert next(m.backbone.parameters()).grad.abs().sum() > 0


def test_dino_last_layer_frozen_at_first():
    m = build("dino", "method.freeze_last_layer_iters=3", "method.num_local=0")
    m.training_step({"video": clips(2)}, StepInfo(0, 10, 0))["loss"].backward()
    last = [p for p in m.head.last_layer.parameters() if p.requires_grad]
    assert last and all(p.grad is not None and p.grad.abs().sum() == 0 for p in last)


def test_nnclr_support_set_fills_with_projections():
    m = build("nnclr", "method.support_size=6")
    m.training_step({"video": clips()}, StepInfo(0, 10, 0))
    m.on_after_optimizer_step(StepInfo(0, 10, 0))
    assert int(m.support_filled) == 4 and int(m.support_ptr) == 4


@pytest.mark.parametrize("frames", [1, 4])
def test_mae_masks_ninety_percent_and_trains_on_images_and_video(frames):
    m = build("mae", frames=frames)
    clip = m.fit_tubelet(torch.randn(2, 3, frames, 32, 32))
    assert clip.shape[2] % m.tubelet == 0
    grid = m.backbone.grid(clip)
    mask = m.random_tube_mask(2, grid, clip.device)
    n_spatial = grid[1] * grid[2]
    assert mask.shape == (2, grid[0] * n_spatial)
    assert int(mask[0].sum()) == grid[0] * round(0.9 * n_spatial)  # the same positions at every time step
    assert torch.equal(mask.view(2, *grid)[:, 0], mask.view(2, *grid)[:, -1])
    out = m.training_step({"video": [torch.randn(2, 3, frames, 32, 32)]}, StepInfo(0, 10, 0))
    out["loss"].backward()
    assert torch.isfinite(out["loss"]) and m.decoder.mask_token.grad.abs().sum() > 0


def test_mae_rejects_a_cnn_backbone():
    from videossl.errors import UserError

    cfg = load_pretrain_config(None, ["method.name=mae", "backbone.name=tiny_r3d"])
    with pytest.raises(UserError, match="ViT backbone"):
        METHODS["mae"](cfg)
