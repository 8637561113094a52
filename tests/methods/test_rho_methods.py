"""The rho-clip methods as the video study's code runs them (facebookresearch/SlowFast slowfast/models/contrastive.py
and configs/contrastive_ssl/*.yaml): MoCo's momentum annealing, MLP depth, multi-view queue and summed query
losses; BYOL's symmetric augmentation; SimCLR's consecutive pairs and BN-free head; SwAV's 3-layer head, epoch-based
prototype freeze and rho clips; the augmentation options; and the K400 recipes that set them."""
import math

import pytest
import torch
from torch import nn
from torchvision.transforms import v2

from videossl import recipes_dir
from videossl.config import load_pretrain_config
from videossl.errors import UserError
from videossl.losses.contrastive import nt_xent_loss
from videossl.methods import METHODS, StepInfo
from videossl.transforms.video import build_video_transform, colour_steps

RECIPES = recipes_dir()


def build(name, *overrides, frames=1):
    cfg = load_pretrain_config(None, [f"method.name={name}", f"data.num_frames={frames}", "data.crop_size=32",
                                      *METHODS[name].smoke_overrides, *overrides])
    return METHODS[name](cfg)


def clips(n_views=2, batch=4, frames=1, size=32, seed=0):
    g = torch.Generator().manual_seed(seed)
    return [torch.randn(batch, 3, frames, size, size, generator=g) for _ in range(n_views)]


def slowfast_momentum(m0, epoch_exact, max_epoch):
    """ContrastiveModel.momentum_anneal_cosine of SlowFast, transcribed."""
    return 1 - (1 - m0) * (math.cos(math.pi * epoch_exact / max_epoch) + 1.0) * 0.5


def test_moco_momentum_annealing_is_slowfast_cosine_to_one():
    m = build("moco_v2", "method.momentum=0.994", "method.momentum_annealing=true")
    total = 200
    for k in (0, 1, 50, 100, 150, 199, 200):
        assert m.key_momentum(StepInfo(k, total, 0)) == pytest.approx(slowfast_momentum(0.994, k, total), abs=1e-12)
    fixed = build("moco_v2", "method.momentum=0.994")
    assert fixed.key_momentum(StepInfo(150, total, 0)) == 0.994


def test_moco_annealed_momentum_drives_the_key_encoder_update():
    m = build("moco_v2", "method.momentum=0.9", "method.momentum_annealing=true", "method.queue_size=8")
    online = nn.Sequential(m.backbone, m.projector)
    with torch.no_grad():
        next(m.projector.parameters()).add_(1.0)
    before = next(m.key_encoder.module[1].parameters()).clone()
    step = StepInfo(5, 10, 0)  # halfway: m = 1 - 0.1 / 2 = 0.95
    m.on_after_optimizer_step(step)
    after = next(m.key_encoder.module[1].parameters())
    expected = 0.95 * before + 0.05 * next(online[1].parameters())
    assert torch.allclose(after, expected, atol=1e-6)


def test_moco_projection_depth_is_an_option():
    linears = lambda m: [x for x in m.projector if isinstance(x, nn.Linear)]  # noqa: E731
    assert len(linears(build("moco_v2"))) == 2
    deep = build("moco_v2", "method.proj_num_layers=3", "method.proj_hidden_dim=16", "method.proj_dim=8")
    assert [x.out_features for x in linears(deep)] == [16, 16, 8]
    assert not any(isinstance(x, nn.BatchNorm1d) for x in deep.projector)  # SlowFast BN_MLP unset for MoCo
    assert all(x.bias is not None for x in linears(deep))


def test_moco_multi_view_queue_enqueues_every_clips_keys_in_order():
    m = build("moco_v2", "method.num_clips=4", "method.queue_size=32", "method.proj_dim=8",
              "method.multi_view_queue=true", "method.shuffle_bn=false")
    views = clips(4)
    m.training_step({"video": views}, StepInfo(0, 10, 0))
    expected = torch.cat([nn.functional.normalize(m.key_encoder(v), dim=1) for v in views])  # (16, 8) clip by clip
    m.on_after_optimizer_step(StepInfo(0, 10, 0))
    assert int(m.queue_ptr) == 16
    assert torch.allclose(m.queue[:16], expected, atol=1e-5)
    single = build("moco_v2", "method.num_clips=4", "method.queue_size=32", "method.proj_dim=8")
    single.training_step({"video": clips(4)}, StepInfo(0, 10, 0))
    single.on_after_optimizer_step(StepInfo(0, 10, 0))
    assert int(single.queue_ptr) == 4  # MoCo's default: the first clip's keys only


def test_moco_sum_over_queries_is_rho_times_the_pair_mean():
    torch.manual_seed(0)
    m = build("moco_v2", "method.num_clips=3", "method.queue_size=8", "method.shuffle_bn=false")
    views = clips(3)
    mean_loss = m.training_step({"video": views}, StepInfo(0, 10, 0))["loss"]
    m.hparams.sum_over_queries = True
    summed = m.training_step({"video": views}, StepInfo(0, 10, 0))["loss"]
    assert torch.allclose(summed, 3 * mean_loss, atol=1e-5)


def test_byol_symmetric_augmentation_and_summed_losses():
    m = build("byol")
    assert set(m.views().transforms) == {"view0", "view1"}  # BYOL's asymmetric pair by default
    sym = build("byol", "method.asymmetric_augment=false")
    assert set(sym.views().transforms) == {"clip"}  # SlowFast: one MoCo v2 augmentation for every clip
    sym.eval()  # BN in eval mode so both passes see the same statistics
    views = clips(2)
    mean_loss = sym.training_step({"video": views}, StepInfo(0, 10, 0))["loss"]
    sym.hparams.sum_over_queries = True
    assert torch.allclose(sym.training_step({"video": views}, StepInfo(0, 10, 0))["loss"], 2 * mean_loss, atol=1e-5)


def test_simclr_consecutive_pairs_summed_and_bn_free_head():
    m = build("simclr", "method.num_clips=4", "method.pairs=consecutive", "method.sum_over_pairs=true",
              "method.proj_batch_norm=false", "method.proj_layers=3")
    assert m.clip_pairs(4) == [(0, 1), (1, 2), (2, 3)]
    assert build("simclr").clip_pairs(3) == [(0, 1), (0, 2), (1, 2)]
    assert not any(isinstance(x, nn.BatchNorm1d) for x in m.projector)
    assert sum(isinstance(x, nn.Linear) for x in m.projector) == 3
    views = clips(4)
    z = m.projector(m.backbone(torch.cat(views))).chunk(4)
    expected = sum(nt_xent_loss(z[i], z[i + 1], m.hparams.temperature) for i in range(3))
    assert torch.allclose(m.training_step({"video": views}, StepInfo(0, 10, 0))["loss"], expected, atol=1e-5)
    with pytest.raises(UserError, match="method.pairs"):
        build("simclr", "method.pairs=random")


def test_swav_video_study_settings():
    m = build("swav", "method.num_local=0", "method.proj_num_layers=3", "method.freeze_prototypes_iters=0",
              "method.freeze_prototypes_epochs=1.0", "train.epochs=10", "method.global_scale_min=0.2",
              "method.global_scale_max=0.766", "method.color_jitter=[0.6,0.6,0.6,0.15]")
    assert sum(isinstance(x, nn.Linear) for x in m.projector) == 3
    assert sum(isinstance(x, nn.BatchNorm1d) for x in m.projector) == 2  # SlowFast SwAV: BN_MLP true
    views = clips(2)
    # 100 steps over 10 epochs: exact epoch 1.0 at step 10 (frozen, SlowFast's epoch_exact <= 1.0), 1.1 at step 11
    m.training_step({"video": views}, StepInfo(10, 100, 1))["loss"].backward()
    assert m.prototypes.weight.grad.abs().sum() == 0
    m.zero_grad()
    m.training_step({"video": views}, StepInfo(11, 100, 1))["loss"].backward()
    assert m.prototypes.weight.grad.abs().sum() > 0
    spec = m.views()
    assert spec.sampler.rho == 2 and set(spec.transforms) == {"clip"}
    steps = spec.transforms["clip"].pipeline.transforms
    assert steps[0].scale == (0.2, 0.766)
    with pytest.raises(UserError, match="num_local=0"):
        build("swav", "method.num_local=2", "method.color_jitter=[0.6,0.6,0.6,0.15]").views()


def _jitter(transform):
    found = [t for s in transform.pipeline.transforms if isinstance(s, v2.RandomApply) for t in s.transforms
             if isinstance(t, v2.ColorJitter)]
    assert len(found) == 1
    j = found[0]
    return [j.brightness[1] - 1, j.contrast[1] - 1, j.saturation[1] - 1, j.hue[1]]


@pytest.mark.parametrize("name", ["simclr", "moco_v2", "byol", "simsiam", "barlow_twins", "vicreg", "nnclr"])
def test_rho_methods_take_the_video_study_augmentation(name):
    default = build(name).views()
    first = next(iter(default.transforms.values()))
    assert first.pipeline.transforms[0].scale == (0.2, 1.0)  # the transforms' MoCo v2 default, unchanged
    assert _jitter(first) == pytest.approx([0.4, 0.4, 0.4, 0.1])
    study = build(name, "method.crop_scale=[0.2,0.766]", "method.color_jitter=[0.6,0.6,0.6,0.15]",
                  "method.gray_p=0.2").views()
    for transform in study.transforms.values():
        assert transform.pipeline.transforms[0].scale == (0.2, 0.766)
        assert _jitter(transform) == pytest.approx([0.6, 0.6, 0.6, 0.15])


def test_rho_augmentation_reaches_the_gpu_path_and_rejects_bad_values():
    spec = build("moco_v2", "data.gpu_augment=true", "method.crop_scale=[0.2,0.766]",
                 "method.color_jitter=[0.6,0.6,0.6,0.15]").views()
    assert spec.transforms["clip"].pipeline.transforms[0].scale == (0.2, 0.766)
    jitters = [t for s in spec.device_transforms[0].per_sample.transforms if isinstance(s, v2.RandomApply)
               for t in s.transforms if isinstance(t, v2.ColorJitter)]
    assert jitters and jitters[0].hue == (-0.15, 0.15)
    with pytest.raises(UserError, match="crop_scale"):
        build("moco_v2", "method.crop_scale=[0.9,0.2]").views()
    with pytest.raises(UserError, match="color_jitter"):
        build("moco_v2", "method.color_jitter=[0.6,0.6]").views()


def test_colour_steps_explicit_jitter_leaves_the_strength_default_alone():
    explicit = colour_steps(jitter=(0.6, 0.6, 0.6, 0.15))[0].transforms[0]
    assert explicit.brightness == (0.4, 1.6) and explicit.hue == (-0.15, 0.15)
    default = colour_steps()[0].transforms[0]
    assert default.brightness == pytest.approx((0.6, 1.4)) and default.hue == pytest.approx((-0.1, 0.1))
    frames = torch.randint(0, 255, (4, 40, 48, 3), dtype=torch.uint8)
    out = build_video_transform("ssl", 32, scale=(0.2, 0.766), jitter=(0.6, 0.6, 0.6, 0.15))(frames)
    assert out.shape == (3, 4, 32, 32)


RECIPE_SETTINGS = {  # recipe stem -> method settings read in facebookresearch/SlowFast configs/contrastive_ssl/
    "moco_v2_k400_slow_r50": {"num_clips": 4, "temperature": 0.1, "momentum": 0.994, "momentum_annealing": True,
                              "proj_num_layers": 3, "proj_hidden_dim": 2048, "proj_dim": 128, "queue_size": 65536,
                              "multi_view_queue": True, "sum_over_queries": True},
    "byol_k400_slow_r50": {"num_clips": 2, "momentum_base": 0.996, "proj_hidden_dim": 4096, "proj_dim": 256,
                           "pred_hidden_dim": 4096, "asymmetric_augment": False, "sum_over_queries": True},
    "byol_k400_slow_r50_16x4": {"num_clips": 4, "momentum_base": 0.996, "asymmetric_augment": False},
    "simclr_k400_slow_r50": {"num_clips": 4, "temperature": 0.1, "proj_layers": 3, "proj_batch_norm": False,
                             "pairs": "consecutive", "sum_over_pairs": True, "proj_dim": 128},
    "swav_k400_slow_r50": {"num_global": 2, "num_local": 0, "proj_num_layers": 3, "num_prototypes": 1000,
                           "temperature": 0.1, "epsilon": 0.05, "queue_length": 0, "freeze_prototypes_epochs": 1.0},
}


@pytest.mark.parametrize("stem", sorted(RECIPE_SETTINGS))
def test_k400_recipes_set_the_slowfast_values(stem):
    cfg = load_pretrain_config(RECIPES / f"{stem}.yaml")
    for key, value in RECIPE_SETTINGS[stem].items():
        assert cfg.method[key] == value, (stem, key)
    if stem.startswith("swav"):
        assert [cfg.method.global_scale_min, cfg.method.global_scale_max] == [0.2, 0.766]
    else:
        assert list(cfg.method.crop_scale) == [0.2, 0.766]
    assert list(cfg.method.color_jitter) == [0.6, 0.6, 0.6, 0.15] and cfg.method.gray_p == 0.2
    assert cfg.train.epochs == 200 and cfg.optim.warmup_epochs == 35 and cfg.optim.warmup_start_lr == 0.001
