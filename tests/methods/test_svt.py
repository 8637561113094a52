"""SVT: its views from one decode, the pairing switches, the losses against DINO's, the teacher's inputs, image
initialisation and the recipes."""

import numpy as np
import pytest
import torch

from videossl import recipes_dir
from videossl.config import load_pretrain_config
from videossl.errors import UserError
from videossl.losses.dino import dino_loss
from videossl.methods import METHODS, StepInfo
from videossl.methods.svt import forward_by_shape, svt_losses, view_pairs

RECIPES = recipes_dir()
STEP = StepInfo(step=5, total_steps=10, epoch=0)


def build(*overrides, frames=4):
    cfg = load_pretrain_config(None, ["method.name=svt", f"data.num_frames={frames}", "data.crop_size=32",
                                      *METHODS["svt"].smoke_overrides, *overrides])
    return METHODS["svt"](cfg)


def views_for(method, batch=3):
    """Random views with the shapes ``method.views()`` declares: globals (4 and 2 frames, 32 px), locals 16 px."""
    frames, _, local = method.view_frames()
    h = method.hparams
    globals_ = [torch.randn(batch, 3, t, 32, 32) for t in frames]
    locals_ = [torch.randn(batch, 3, local[k % len(local)], 16, 16) for k in range(h.num_local)]
    return globals_ + locals_


def test_view_pairs_follow_the_switches_and_skip_self_pairs():
    pairs = view_pairs(2, 3, ("l->g", "g->g", "l->l", "g->l"))
    assert pairs["l->g"] == [(2, 0), (3, 0), (4, 0), (2, 1), (3, 1), (4, 1)]
    assert pairs["g->g"] == [(1, 0), (0, 1)]
    assert len(pairs["l->l"]) == 6 and all(s != t for s, t in pairs["l->l"])
    assert pairs["g->l"] == [(0, 2), (1, 2), (0, 3), (1, 3), (0, 4), (1, 4)]


def test_default_pairings_are_dinos_loss_over_teacher_globals():
    torch.manual_seed(0)
    student = [torch.randn(4, 16) for _ in range(5)]
    teacher = [torch.randn(4, 16) for _ in range(2)]
    center = torch.randn(1, 16) * 0.1
    pairs = view_pairs(2, 3, ("l->g", "g->g"))
    loss, parts = svt_losses(student, dict(enumerate(teacher)), pairs, center, 0.1, 0.04)
    torch.testing.assert_close(loss, dino_loss(student, teacher, center, 0.1, 0.04))
    # the total is the pair-weighted mean of the two SVT losses (6 cross-view pairs, 2 motion pairs)
    torch.testing.assert_close(loss, (6 * parts["l->g"] + 2 * parts["g->g"]) / 8)


def test_loss_sees_only_the_enabled_pairings():
    torch.manual_seed(0)
    motion_only = build("method.local_to_global=false")
    assert list(motion_only.pairs) == ["g->g"]
    views = views_for(motion_only)
    loss = motion_only.training_step({"video": views}, STEP)["loss"]
    changed = views[:2] + [torch.randn_like(v) for v in views[2:]]
    motion_only.center.zero_()
    loss_a = motion_only.training_step({"video": views}, STEP)["loss"]
    motion_only.center.zero_()
    loss_b = motion_only.training_step({"video": changed}, STEP)["loss"]
    torch.testing.assert_close(loss_a, loss_b)  # g->g only: the locals do not enter the loss
    assert torch.isfinite(loss)

    cross = build()
    cross.center.zero_()
    a = cross.training_step({"video": views}, STEP)
    cross.center.zero_()
    b = cross.training_step({"video": changed}, STEP)
    assert not torch.allclose(a["loss"], b["loss"])  # l->g: they do
    assert {"loss_l2g", "loss_g2g"} <= set(a)

    with pytest.raises(UserError, match="every view pairing is off"):
        build("method.local_to_global=false", "method.global_to_global=false")


@pytest.mark.parametrize("switches,teacher_frames", [
    ((), [4, 2]),  # SVT: the teacher sees the two globals only
    (("method.local_to_local=true",), [4, 2, 2, 1]),  # l->l: local targets, so the teacher sees the locals too
    # g->l only: local targets, and the globals still go through the teacher for DINO's centre
    (("method.global_to_global=false", "method.local_to_global=false", "method.global_to_local=true"), [4, 2, 2, 1]),
])
def test_teacher_sees_the_views_the_pairings_target(switches, teacher_frames):
    method = build(*switches)
    hook_shapes = []
    method.teacher.register_forward_hook(lambda module, args, out: hook_shapes.append(tuple(args[0].shape)))
    method.training_step({"video": views_for(method, batch=2)}, STEP)
    fed = sorted(shape[2] for shape in hook_shapes for _ in range(shape[0] // 2))  # frames of each view fed
    assert fed == sorted(teacher_frames)


@pytest.mark.parametrize("switches", [(), ("method.local_to_local=true",), ("method.global_to_local=true",),
                                      ("method.global_to_global=false", "method.local_to_global=false",
                                       "method.local_to_local=true")])
def test_center_is_updated_from_the_teachers_global_outputs_only(switches):
    """DINO (facebookresearch/dino main_dino.py DINOLoss.update_center, fed teacher(images[:2])) and SVT's train_ssl.py
    centre on the teacher's global-view outputs; local targets (l->l, g->l) must not enter the centre."""
    from videossl.losses.dino import updated_center
    from videossl.methods.multicrop import forward_by_resolution

    torch.manual_seed(0)
    method = build(*switches)
    method.center.copy_(torch.randn_like(method.center) * 0.1)
    before = method.center.clone()
    views = views_for(method, batch=3)
    with torch.no_grad():
        teacher_globals = [forward_by_resolution(method.teacher, [v])[0] for v in views[: method.hparams.num_global]]
    method.training_step({"video": views}, STEP)
    expected = updated_center(before, teacher_globals, method.hparams.center_momentum)
    torch.testing.assert_close(method.center, expected)


def test_views_come_from_one_decode_with_global_and_local_geometry(tiny_pool):
    from videossl.data.datasets import read_dataset
    from videossl.data.video_dataset import VideoDataset

    method = build()
    dataset = VideoDataset(read_dataset("folder", str(tiny_pool)), method.views(), decoder="pyav", seed=0)
    sample = dataset[0]
    shapes = [tuple(v.shape) for v in sample["video"]]
    assert shapes == [(3, 4, 32, 32), (3, 2, 32, 32), (3, 2, 16, 16), (3, 1, 16, 16)]


def test_images_make_every_view_one_frame():
    method = build(frames=1)
    frames, _, local = method.view_frames()
    assert frames == [1, 1] and local == [1]
    sampled = method.views().sampler(_meta(), np.random.default_rng(0))
    assert all(len(v.frame_indices) == 1 for v in sampled.views)


def _meta():
    from videossl.data.sampling import VideoMeta

    return VideoMeta(num_frames=40, fps=16.0, duration=2.5, height=64, width=64, has_audio=False)


def test_forward_by_shape_keeps_view_order():
    views = [torch.randn(2, 3, t, s, s) for t, s in ((4, 32), (2, 16), (4, 32), (1, 16), (2, 16))]
    calls = []

    def module(x):
        calls.append(tuple(x.shape))
        return x.flatten(1).sum(dim=1, keepdim=True)

    outputs = forward_by_shape(module, views)
    for out, view in zip(outputs, views):
        torch.testing.assert_close(out, view.flatten(1).sum(dim=1, keepdim=True))
    assert len(calls) == 3  # one forward per distinct shape


def test_image_weights_initialise_student_and_teacher(tmp_path):
    from transformers import ViTConfig, ViTModel

    torch.manual_seed(0)
    vit = ViTModel(ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
                             image_size=32, patch_size=8), add_pooling_layer=False)
    vit.save_pretrained(tmp_path / "vit")
    method = build(f"method.image_weights={tmp_path / 'vit'}")
    student = method.backbone.model.embeddings.patch_embeddings.projection.weight
    torch.testing.assert_close(student, vit.embeddings.patch_embeddings.projection.weight.detach())
    teacher = method.teacher.module[0].state_dict()
    for key, value in method.backbone.state_dict().items():
        assert torch.equal(teacher[key], value), key


@pytest.mark.parametrize("recipe", sorted(p.name for p in RECIPES.glob("svt_*.yaml")))
def test_recipes_load(recipe):
    cfg = load_pretrain_config(RECIPES / recipe)
    # svt_synthetic_tiny3d is the one CNN control recipe (the method on tiny_r3d, beside the tiny TimeSformer's)
    assert cfg.method.name == "svt" and ("timesformer" in cfg.backbone.name or recipe == "svt_synthetic_tiny3d.yaml")
    assert cfg.method.local_to_global and cfg.method.global_to_global


def test_window_sampling_matches_svt_decoder():
    """kahnchana/svt datasets/decoder.py (temporal_aug, RAND_FR): one window of W frames; global 1 =
    linspace(0, W-5, 4), global 2 = linspace(5, W, 8) (clamped to W-1), locals linspace over a random W//8 span."""
    from videossl.data.sampling import SVTSampler, VideoMeta

    meta = VideoMeta(num_frames=300, fps=30.0, duration=10.0, height=32, width=32, has_audio=False)
    sampler = SVTSampler(global_frames=(4, 8), global_strides=(1, 1), num_local=8,
                         local_frames=(2, 2, 4, 4, 8, 8, 16, 16), local_strides=(1,), window_frames=256)
    for seed in range(5):
        views = sampler(meta, np.random.default_rng(seed)).views
        g1, g2 = views[0].frame_indices, views[1].frame_indices
        start = g1[0]
        assert g1 == tuple(int(i) for i in np.linspace(start, start + 251, 4).astype(int))
        assert g2 == tuple(min(int(i), start + 255) for i in np.linspace(start + 5, start + 256, 8).astype(int))
        locals_ = views[2:]
        assert [len(v.frame_indices) for v in locals_] == [2, 2, 4, 4, 8, 8, 16, 16]
        for v in locals_:
            idx = v.frame_indices
            assert idx[-1] - idx[0] == 32 and start <= idx[0] and idx[-1] <= start + 255  # W // 8 inside the window
    short = VideoMeta(num_frames=7, fps=30.0, duration=7 / 30, height=32, width=32, has_audio=False)
    g1, g2 = (v.frame_indices for v in sampler(short, np.random.default_rng(0)).views[:2])
    assert g1 == (0, 0, 1, 2) and g2 == (5, 5, 5, 5, 6, 6, 6, 6)  # a short video: the window is what was decoded


def test_svt_method_passes_window_to_sampler():
    method = build("method.window_frames=64")
    assert method.views().sampler.window_frames == 64
    with pytest.raises(UserError, match="window_frames"):
        build("method.window_frames=-1").views()


def test_k400_recipe_follows_svt_code():
    """kahnchana/svt train_ssl.py defaults + scripts/train.sh (4 GPUs x 8) + decoder.py RAND_FR views."""
    cfg = load_pretrain_config(RECIPES / "svt_k400_timesformer_b16.yaml")
    m, o = cfg.method, cfg.optim
    assert (m.num_global, m.num_local, m.window_frames) == (2, 8, 256)
    assert list(m.global_frames) == [4, 8] and sorted(m.local_frames) == [2, 2, 4, 4, 8, 8, 16, 16]
    assert (cfg.data.crop_size, m.local_size, m.global_scale_min, m.local_scale_max) == (224, 96, 0.4, 0.4)
    assert (m.out_dim, m.hidden_dim, m.bottleneck_dim, m.norm_last_layer) == (65536, 2048, 256, True)
    assert (m.student_temp, m.teacher_temp, m.warmup_teacher_temp, m.teacher_temp_warmup) == (0.1, 0.04, 0.04, 0.0)
    assert (m.center_momentum, m.momentum_base, m.momentum_final) == (0.9, 0.996, 1.0)
    assert (m.local_to_global, m.global_to_global, m.local_to_local, m.global_to_local) == (True, True, False, False)
    assert o.name == "adamw" and o.lr == pytest.approx(5e-4 * 32 / 256) and o.min_lr == pytest.approx(1e-6)
    assert (o.weight_decay, o.weight_decay_end, o.clip_grad, o.warmup_epochs) == (0.04, 0.4, 3.0, 10)
    assert cfg.train.batch_size * cfg.train.devices == 32


def _target_spread(head: torch.nn.Module, features: torch.Tensor, teacher_temp: float = 0.04) -> float:
    """Entropy of the mean teacher target minus the mean per-sample entropy (centred with the batch mean): 0 when
    every sample gets the same target, large when the targets tell samples apart."""
    logits = head(features)
    p = torch.softmax((logits - logits.mean(0)) / teacher_temp, dim=-1)
    per_sample = -(p * p.clamp_min(1e-12).log()).sum(-1).mean()
    mean = p.mean(0)
    return float(-(mean * mean.clamp_min(1e-12).log()).sum() - per_sample)


def test_bn_in_head_tells_apart_clips_whose_features_barely_differ():
    """Issue 7: the tiny TimeSformer on residual frames gives nearly the same CLS for every clip; the plain DINO head
    then gives every sample the same teacher target (which centering makes uniform: collapse). DINO's
    use_bn_in_head rescales the differences so the targets differ per sample."""
    torch.manual_seed(0)
    features = torch.randn(1, 64) + 1e-3 * torch.randn(32, 64)  # (B, D): one vector plus a tiny per-clip part
    spreads = {}
    for bn in (False, True):
        torch.manual_seed(0)
        method = build(f"method.use_bn_in_head={bn}")
        with torch.no_grad():
            spreads[bn] = _target_spread(method.teacher.module[1], features)
    assert spreads[False] < 0.01
    assert spreads[True] > 0.5


def test_bn_in_head_sits_after_hidden_layers_in_student_and_teacher():
    torch.manual_seed(0)
    method = build("method.use_bn_in_head=true")
    kinds = ["Linear", "BatchNorm1d", "GELU", "Linear", "BatchNorm1d", "GELU", "Linear"]  # DINOHead(use_bn=True)
    assert [type(m).__name__ for m in method.head.mlp] == kinds
    assert [type(m).__name__ for m in method.teacher.module[1].mlp] == kinds
    assert method.teacher.module[0] is not method.backbone  # a copy, not the student itself
    out = method.training_step({"video": views_for(method, batch=4)}, STEP)
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    assert method.head.mlp[1].weight.grad is not None and method.head.mlp[1].weight.grad.abs().sum() > 0


def test_synthetic_recipe_uses_bn_in_head():
    cfg = load_pretrain_config(RECIPES / "svt_synthetic_tiny_timesformer.yaml")
    assert cfg.method.use_bn_in_head and cfg.backbone.kwargs.input_transform == "residual"


def test_koleo_weight_adds_koleo_of_the_global_views_backbone_features():
    from videossl.losses.dino import koleo_loss

    torch.manual_seed(0)
    plain, regularised = build(), build("method.koleo_weight=0.5")
    regularised.load_state_dict(plain.state_dict())
    views = views_for(plain, batch=4)
    a = plain.training_step({"video": views}, STEP)
    b = regularised.training_step({"video": views}, STEP)
    assert "loss_koleo" not in a
    with torch.no_grad():
        expected = sum(koleo_loss(plain.backbone(v)) for v in views[:2])  # the two globals only
    torch.testing.assert_close(b["loss_koleo"], expected)
    torch.testing.assert_close(b["loss"], a["loss"] + 0.5 * expected)


def test_teacher_backbone_is_saved_as_an_extra_encoder(tmp_path):
    """SVT's eval_linear.py loads ckpt["teacher"] (issue #22: the teacher is fine-tuned); DINO's --checkpoint_key
    teacher: the teacher's backbone goes to encoder_teacher.pt beside the student's encoder.pt."""
    from videossl.backbones import load_encoder, save_encoder

    method = build()
    module, name, kwargs = method.extra_encoders()["teacher"]
    assert module is method.teacher.module[0] and name == "tiny_timesformer"
    with torch.no_grad():
        next(module.parameters()).add_(1.0)  # the teacher differs from the student after EMA updates
    save_encoder(tmp_path / "encoder_teacher.pt", module, name, kwargs)
    loaded = load_encoder(tmp_path / "encoder_teacher.pt")
    for key, value in module.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value)
