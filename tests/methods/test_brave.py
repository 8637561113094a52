"""BraVe: the regression loss, pairwise heads for V/V, V/A, V/VA, gradients to every tower, the view sampler."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from videossl import recipes_dir
from videossl.config import load_pretrain_config
from videossl.data.sampling import VideoMeta
from videossl.errors import UserError
from videossl.heads import brave_predictor, brave_projector
from videossl.losses.brave import brave_loss, brave_pair_loss, brave_regression_loss
from videossl.methods.base import StepInfo
from videossl.methods.brave import BraVe
from videossl.transforms.video import frame_differences


def _cfg(*extra):
    return load_pretrain_config(None, ["method.name=brave", "data.num_frames=4", "data.frame_stride=1",
                                       "data.crop_size=32", "method.broad_frames=4", "method.proj_hidden_dim=32",
                                       "method.pred_hidden_dim=32", "method.proj_dim=16", *extra])


def _batch(audio=True, video=True, b=4):
    out = {"video": [torch.randn(b, 3, 4, 32, 32)] + ([torch.randn(b, 3, 4, 32, 32)] if video else [])}
    if audio:
        out["audio"] = [torch.randn(b, 1, 64, 101)]
    return out


def test_regression_loss_is_two_minus_two_cosine_with_stop_gradient():
    p, z = torch.randn(6, 8, requires_grad=True), torch.randn(6, 8, requires_grad=True)
    loss = brave_regression_loss(p, z)
    expected = (2 - 2 * F.cosine_similarity(p, z, dim=-1)).mean()
    assert torch.allclose(loss, expected, atol=1e-5)
    loss.backward()
    assert p.grad is not None and z.grad is None  # the target is a constant
    z2 = torch.randn(6, 8, requires_grad=True)
    brave_regression_loss(p, z2, stop_gradient=False).backward()
    assert z2.grad is not None and z2.grad.abs().sum() > 0


def test_method_loss_is_mean_of_one_minus_cosine_terms_as_in_brave_code():
    """google-deepmind/brave brave/models/brave/brave.py: _regression_loss = mean 0.5 |x^ - y^|^2 (= 1 - cos);
    the loss is the mean over the 2 x (broad views) directional terms, each against stop-gradient targets."""
    p, z = torch.randn(6, 8), torch.randn(6, 8)
    assert torch.allclose(brave_loss(p, z), (1 - F.cosine_similarity(p, z, dim=-1)).mean(), atol=1e-5)
    torch.manual_seed(0)
    method = BraVe(_cfg("method.broad_video=true", "method.broad_audio=true"))
    method.train()
    batch = _batch(audio=True, video=True)
    torch.manual_seed(1)
    out = method.training_step(batch, StepInfo(0, 10, 0))
    # recompute by hand: the same forward (BN in train mode uses batch statistics, so outputs repeat exactly)
    narrow = method.backbone(batch["video"][0])
    terms = []
    for key, x in (("video", batch["video"][1]), ("audio", batch["audio"][0])):
        zn, hn = method.narrow_heads[key](narrow)
        zb, hb = method.broad_heads[key](method.broad_backbones[key](x))
        terms += [(1 - F.cosine_similarity(hb, zn, dim=-1)).mean(), (1 - F.cosine_similarity(hn, zb, dim=-1)).mean()]
    assert torch.allclose(out["loss"], torch.stack(terms).mean(), atol=1e-5)
    assert 0.0 <= float(out["loss"].detach()) <= 2.0  # 1 - cos is in [0, 2]; the old sum of 2 - 2 cos terms was not


def test_heads_match_brave_code_modules():
    """brave/models/brave/modules.py: Projector Linear(512)-BN-ReLU-Linear(128)-BN;
    Predictor Linear(4096)-BN-ReLU-Linear(4096)-BN-ReLU-Linear(128)."""
    proj = brave_projector(2048)
    assert [type(m).__name__ for m in proj] == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d"]
    assert [m.out_features for m in proj if isinstance(m, torch.nn.Linear)] == [512, 128]
    assert proj[-1].affine  # haiku BatchNorm(create_scale=True, create_offset=True)
    pred = brave_predictor()
    assert [type(m).__name__ for m in pred] == ["Linear", "BatchNorm1d", "ReLU", "Linear", "BatchNorm1d", "ReLU",
                                                "Linear"]
    assert [m.out_features for m in pred if isinstance(m, torch.nn.Linear)] == [4096, 4096, 128]
    from videossl.methods.brave import BraVeConfig

    c = BraVeConfig()
    assert (c.proj_hidden_dim, c.proj_dim, c.pred_hidden_dim, c.pred_num_layers) == (512, 128, 4096, 3)


def test_pair_loss_is_symmetric_sum():
    a, b, c, d = (torch.randn(3, 5) for _ in range(4))
    assert torch.allclose(brave_pair_loss(a, b, c, d), brave_regression_loss(a, d) + brave_regression_loss(c, b))


@pytest.mark.parametrize("broad", [("true", "false"), ("false", "true"), ("true", "true")], ids=["VV", "VA", "VVA"])
def test_every_tower_and_pairwise_head_gets_gradients(broad):
    torch.manual_seed(0)
    method = BraVe(_cfg(f"method.broad_video={broad[0]}", f"method.broad_audio={broad[1]}"))
    keys = [k for k, on in zip(("video", "audio"), broad) if on == "true"]
    assert sorted(method.broad_backbones) == sorted(keys)
    assert sorted(method.narrow_heads) == sorted(keys)  # one projector + predictor per (narrow, broad) pair
    out = method.training_step(_batch(audio="audio" in keys, video="video" in keys), StepInfo(0, 10, 0))
    assert torch.isfinite(out["loss"])
    assert all(f"loss_{k}" in out for k in keys)
    out["loss"].backward()
    for module in [method.backbone, *method.broad_backbones.values(), *method.narrow_heads.values(),
                   *method.broad_heads.values()]:
        grads = [p.grad for p in module.parameters() if p.requires_grad]
        assert any(g is not None and g.abs().sum() > 0 for g in grads), type(module).__name__
    saved = method.extra_encoders()
    assert ("broad" in saved) == ("video" in keys) and ("audio" in saved) == ("audio" in keys)


def test_narrow_and_broad_backbones_do_not_share_weights():
    method = BraVe(_cfg())
    narrow = dict(method.backbone.named_parameters())
    broad = dict(method.broad_backbones["video"].named_parameters())
    assert narrow.keys() == broad.keys()
    assert all(narrow[k].data_ptr() != broad[k].data_ptr() for k in narrow)


def test_frame_differences():
    clip = torch.arange(4.0).view(1, 1, 4, 1, 1).expand(2, 3, 4, 5, 5)
    diff = frame_differences(clip)
    assert diff.shape == (2, 3, 3, 5, 5) and torch.all(diff == 1)
    assert frame_differences(clip[:, :, :1]).shape[2] == 1


def test_views_narrow_inside_broad_and_fixed_audio_length():
    method = BraVe(_cfg("method.broad_audio=true", "method.audio_seconds=2.0", "method.broad_stride=4"))
    spec = method.views()
    assert spec.audio_rate == method.hparams.audio_rate
    for fps in (16.0, 25.0, 30.0):
        meta = VideoMeta(num_frames=int(4 * fps), fps=fps, duration=4.0, height=32, width=32, has_audio=True)
        for seed in range(5):
            views = {v.name: v for v in spec.sampler(meta, np.random.default_rng(seed)).views}
            narrow, broad, audio = views["narrow"], views["broad"], views["broad_audio"]
            assert broad.frame_indices[0] <= narrow.frame_indices[0] and narrow.frame_indices[-1] <= broad.frame_indices[-1]
            assert audio.time_range[1] - audio.time_range[0] == pytest.approx(2.0)  # collates for any fps
            assert 0.0 <= audio.time_range[0] and audio.time_range[1] <= 4.0 + 1e-6


def test_no_broad_view_is_an_error():
    with pytest.raises(UserError, match="broad"):
        BraVe(_cfg("method.broad_video=false", "method.broad_audio=false"))
    with pytest.raises(UserError, match="broad_input"):
        BraVe(_cfg("method.broad_input=flow"))


def test_brave_recipes_load():
    recipes = sorted(recipes_dir().glob("brave_*.yaml"))
    assert len(recipes) >= 5
    settings = {r.stem: load_pretrain_config(r).method for r in recipes}
    assert {(s.broad_video, s.broad_audio) for s in settings.values()} == {(True, False), (False, True), (True, True)}


@pytest.mark.parametrize("name", ["brave_vv_k400_slow_r50", "brave_va_audioset_slow_r50", "brave_vva_audioset_slow_r50"])
def test_full_size_recipes_follow_the_newest_brave_config(name):
    """google-deepmind/brave @ 0ae20d9: brave/config.py (300k steps), brave/models/brave/config.py (narrow 16 x
    step 2 at 224, broad 64 x step 4 at 112, 80 mel bins, output_dims 128; LARS peak 1.0, Nesterov, trust 1e-3,
    wd 1e-2, 5k warm-up, predictor lr x10), modules.py heads, brave.py shared heads / aligned views / random conv."""
    from videossl.eval.config import load_eval_config

    cfg = load_pretrain_config(recipes_dir() / f"{name}.yaml")
    m, d, o, t = cfg.method, cfg.data, cfg.optim, cfg.train
    assert (d.num_frames, d.frame_stride, d.crop_size) == (16, 2, 224)
    assert (m.broad_frames, m.broad_stride, m.broad_crop_size) == (64, 4, 112)
    assert not m.broad_audio or (m.audio_seconds == pytest.approx(10.24) and m.n_mels == 80)
    assert (m.proj_hidden_dim, m.proj_dim, m.pred_hidden_dim, m.pred_num_layers) == (4096, 128, 4096, 2)
    assert m.shared_heads and m.random_conv and m.random_conv_max_kernel == 11 and m.narrow_at_broad_start
    assert (m.crop_min_scale, m.blur_p) == (pytest.approx(0.3), 1.0)
    assert list(m.color_jitter) == pytest.approx([32 / 255, 0.4, 0.4, 0.2], abs=1e-3)
    assert (o.name, o.lr, o.momentum, o.nesterov, o.lars_eta, o.weight_decay, o.min_lr) == (
        "lars", 1.0, pytest.approx(0.9), True, pytest.approx(1e-3), pytest.approx(1e-2), 0.0)
    assert dict(o.lr_scale) == {"predictor": 10.0} and o.lr_schedule == "cosine"
    assert t.max_steps == 300000 and t.batch_size * t.devices * t.num_nodes == 512
    for name_ in cfg.reference.eval_recipes:
        ev = load_eval_config("random:tiny_r3d", name_)
        assert (ev.linear.classifier, ev.linear.svm_c) == ("svm", pytest.approx(1e-4))
        assert (ev.data.num_frames, ev.data.frame_stride, ev.data.crop_size) == (32, 2, 224)


# ------------------------------------------------------------------------------------------------------------
# The newest google-deepmind/brave (0ae20d9; code changed in 5633be0 and b717f28): random convolutions on the
# broad video, the narrow clip at the start of the broad one, one shared projector + predictor.
# ------------------------------------------------------------------------------------------------------------


def test_random_conv_filters_kernel_sizes_and_he_normal_weights():
    """brave/datasets/augmentations.py _random_convolve: k uniform over 1, 3, ..., 11; tf he_normal weights
    (truncated at 2 std, std sqrt(2 / (k k C))); the k x k kernel centred in the 11 x 11 zero kernel."""
    from videossl.methods.brave import random_conv_filters

    weights, sizes = random_conv_filters(600, 3, 11, torch.Generator().manual_seed(0))
    assert weights.shape == (600, 3, 3, 11, 11)
    counts = {k: int((sizes == k).sum()) for k in (1, 3, 5, 7, 9, 11)}
    assert set(sizes.tolist()) == set(counts) and all(60 < n < 140 for n in counts.values()), counts
    for k in (1, 11):
        picked = weights[sizes == k]
        o = (11 - k) // 2
        inside = picked[..., o:o + k, o:o + k]
        target = (2.0 / (k * k * 3)) ** 0.5
        assert inside.std().item() == pytest.approx(target, rel=0.1)
        assert inside.abs().max().item() <= 2 * target / 0.87962566103423978 + 1e-6  # truncated at 2 std
        assert bool((inside != 0).all()) and float(picked.abs().sum()) == pytest.approx(float(inside.abs().sum()))


def test_random_convolution_matches_per_clip_conv_with_one_filter_for_all_frames():
    from videossl.methods.brave import random_conv_filters, random_convolution
    from videossl.transforms.video import VIDEO_MEAN, VIDEO_STD

    mean, std = torch.tensor(VIDEO_MEAN).view(1, 3, 1, 1, 1), torch.tensor(VIDEO_STD).view(1, 3, 1, 1, 1)
    torch.manual_seed(0)
    pixels = torch.rand(4, 3, 5, 16, 16)
    clip = (pixels - mean) / std
    out = random_convolution(clip, 11, generator=torch.Generator().manual_seed(3))
    weights, sizes = random_conv_filters(4, 3, 11, torch.Generator().manual_seed(3))  # the same draws
    assert out.shape == clip.shape and not torch.allclose(out, clip, atol=1e-3)
    for i, k in enumerate(sizes.tolist()):
        o = (11 - k) // 2
        kernel = weights[i, :, :, o:o + k, o:o + k]
        frames = pixels[i].permute(1, 0, 2, 3)  # (T, C, H, W): every frame through the same k x k filter
        expected = F.conv2d(frames, kernel, padding=k // 2).permute(1, 0, 2, 3)
        assert torch.allclose(out[i] * std[0] + mean[0], expected, atol=1e-4), k


def test_random_convolution_draws_a_filter_per_clip_not_per_frame():
    from videossl.methods.brave import random_convolution
    from videossl.transforms.video import VIDEO_MEAN, VIDEO_STD

    mean, std = torch.tensor(VIDEO_MEAN).view(1, 3, 1, 1, 1), torch.tensor(VIDEO_STD).view(1, 3, 1, 1, 1)
    torch.manual_seed(1)
    base = torch.rand(1, 3, 1, 16, 16)
    scales = torch.tensor([1.0, 2.0, 0.5, 3.0]).view(1, 1, 4, 1, 1)
    pixels = (base * scales).expand(6, 3, 4, 16, 16)  # 6 identical clips; frame t = scale_t x the same image
    out = random_convolution((pixels - mean) / std, 11, generator=torch.Generator().manual_seed(0)) * std + mean
    # linear, no bias, one filter per clip: frame t of the output is scale_t x frame 0 of the output
    assert torch.allclose(out, out[:, :, :1] * scales, atol=1e-4)
    # each clip its own filter: identical inputs, different outputs
    assert all(not torch.allclose(out[0], out[j], atol=1e-3) for j in range(1, 6))


@pytest.mark.parametrize("on", [False, True])
def test_training_step_convolves_only_the_broad_video(on):
    method = BraVe(_cfg("method.broad_video=true", "method.broad_audio=false", f"method.random_conv={str(on).lower()}"))
    seen = {}
    method.backbone.register_forward_pre_hook(lambda m, args: seen.__setitem__("narrow", args[0]))
    method.broad_backbones["video"].register_forward_pre_hook(lambda m, args: seen.__setitem__("broad", args[0]))
    batch = _batch(audio=False)
    torch.manual_seed(0)
    method.training_step(batch, StepInfo(0, 10, 0))
    assert torch.equal(seen["narrow"], batch["video"][0])
    assert torch.equal(seen["broad"], batch["video"][1]) != on
    method.eval()  # a training-time augmentation only
    assert torch.equal(method.broad_inputs(batch)["video"], batch["video"][1])


def _aligned_spec(*extra):
    cfg = _cfg("method.narrow_at_broad_start=true", "data.num_frames=16", "data.frame_stride=2",
               "method.broad_frames=64", "method.broad_stride=4", *extra)
    return BraVe(cfg).views()


def test_narrow_at_broad_start_sampler_loops_the_broad_view_like_brave_code():
    """brave/models/brave/brave.py _brave_random_view_sampler (b717f28): the narrow start is uniform over the
    video, the broad view starts at the same frame, the video repeated to cover 64 x 4 frames."""
    spec = _aligned_spec("method.broad_audio=true", "method.audio_seconds=10.24")
    meta = VideoMeta(num_frames=250, fps=25.0, duration=10.0, height=32, width=32, has_audio=True)
    starts, wrapped = [], 0
    for seed in range(200):
        views = {v.name: v for v in spec.sampler(meta, np.random.default_rng(seed)).views}
        narrow, broad, audio = views["narrow"].frame_indices, views["broad"].frame_indices, views["broad_audio"]
        start = narrow[0]
        assert 0 <= start <= 250 - 31 and narrow == tuple(range(start, start + 32, 2))
        assert broad[0] == start and broad == tuple((start + 4 * i) % 250 for i in range(64))
        wrapped += any(b < a for a, b in zip(broad, broad[1:]))  # jumps back to the video's start
        assert audio.time_range == pytest.approx((0.0, 10.24))  # a 10 s file: the whole file, padded
        starts.append(start)
    assert wrapped == 200 and min(starts) < 30 and max(starts) > 190  # 253 frames > 250: the broad view always loops

    long = VideoMeta(num_frames=750, fps=25.0, duration=30.0, height=32, width=32, has_audio=True)
    for seed in range(50):
        views = {v.name: v for v in spec.sampler(long, np.random.default_rng(seed)).views}
        start_s = views["narrow"].frame_indices[0] / 25.0
        lo, hi = views["broad_audio"].time_range
        assert hi - lo == pytest.approx(10.24) and hi <= 30.0 + 1e-6
        assert lo == pytest.approx(min(start_s, 30.0 - 10.24))  # starts with the narrow clip when it fits


def test_narrow_at_broad_start_stays_inside_the_segment_and_loops_short_videos():
    spec = _aligned_spec()
    segment = VideoMeta(num_frames=500, fps=25.0, duration=20.0, height=32, width=32, has_audio=False,
                        start=2.0, end=8.0)  # frames [50, 200)
    short = VideoMeta(num_frames=20, fps=25.0, duration=0.8, height=32, width=32, has_audio=False)
    for seed in range(30):
        views = {v.name: v for v in spec.sampler(segment, np.random.default_rng(seed)).views}
        assert all(50 <= i < 200 for v in views.values() for i in v.frame_indices)
        assert views["broad"].frame_indices[0] == views["narrow"].frame_indices[0]
        views = {v.name: v for v in spec.sampler(short, np.random.default_rng(seed)).views}
        assert views["narrow"].frame_indices == tuple((2 * i) % 20 for i in range(16))  # BraVe repeats the video
    old = BraVe(_cfg("data.num_frames=16", "data.frame_stride=2", "method.broad_frames=64")).views()
    meta = VideoMeta(num_frames=250, fps=25.0, duration=10.0, height=32, width=32, has_audio=False)
    firsts = {(v.name, v.frame_indices[0]) for seed in range(20) for v in old.sampler(meta, np.random.default_rng(seed)).views}
    assert {i for name, i in firsts if name == "broad"} == {0}  # the option off: the 1ae5f0a sampler


@pytest.mark.parametrize("broad", [("true", "false"), ("true", "true")], ids=["VV", "VVA"])
def test_shared_heads_one_projector_and_predictor_for_every_view(broad):
    """brave/models/brave/brave.py (5633be0): b_video_to_n_video, n_video_to_b_video, b_audio_to_n_video and
    n_video_to_b_audio all call the one ProjectAndPredict 'shared_project'; modules.py Projector
    Linear(4096)-BN-ReLU-Linear(128)-BN, Predictor Linear(4096)-BN-ReLU-Linear(128)."""
    from videossl.engine.optim import parameter_groups

    torch.manual_seed(0)
    method = BraVe(_cfg(f"method.broad_video={broad[0]}", f"method.broad_audio={broad[1]}", "method.shared_heads=true",
                        "method.pred_num_layers=2"))
    assert not hasattr(method, "narrow_heads") and not hasattr(method, "broad_heads")
    widths = {method.backbone.num_features, *(b.num_features for b in method.broad_backbones.values())}
    assert sorted(method.heads.inputs) == sorted(str(w) for w in widths)  # one input layer per backbone width
    assert [type(m).__name__ for m in method.heads.predictor] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    batch = _batch(audio=broad[1] == "true")
    torch.manual_seed(1)
    out = method.training_step(batch, StepInfo(0, 10, 0))
    narrow = method.backbone(batch["video"][0])
    terms = []
    for key, x in (("video", batch["video"][1]), ("audio", batch.get("audio", [None])[0]))[:len(method.broad_backbones)]:
        zn, hn = method.heads(narrow)
        zb, hb = method.heads(method.broad_backbones[key](x))
        terms += [(1 - F.cosine_similarity(hb, zn, dim=-1)).mean(), (1 - F.cosine_similarity(hn, zb, dim=-1)).mean()]
    assert torch.allclose(out["loss"], torch.stack(terms).mean(), atol=1e-5)
    # optim.lr_scale {predictor: 10} (BraVe: scale_learning_rate_by_regex '.*predictor.*') picks the predictor only
    scaled = [p for g in parameter_groups(method, 0.01, True, {"predictor": 10.0}) if g["lr_scale"] == 10.0
              for p in g["params"]]
    assert {id(p) for p in scaled} == {id(p) for p in method.heads.predictor.parameters()}


def test_crop_scale_and_blur_probability_reach_the_view_transforms():
    from torchvision.transforms import v2

    from videossl.transforms.video import RandomGaussianBlur

    spec = BraVe(_cfg("method.crop_min_scale=0.3", "method.blur_p=1.0", "method.color_jitter=[0.125,0.4,0.4,0.2]")).views()
    for name in ("narrow", "broad"):
        steps = spec.transforms[name].pipeline.transforms
        crop = next(s for s in steps if isinstance(s, v2.RandomResizedCrop))
        blur = next(s for s in steps if isinstance(s, RandomGaussianBlur))
        assert tuple(crop.scale) == pytest.approx((0.3, 1.0)) and blur.p == 1.0
        jitter = next(s for s in steps if isinstance(s, v2.RandomApply)).transforms[0]
        ranges = [*jitter.brightness, *jitter.contrast, *jitter.saturation, *jitter.hue]
        assert ranges == pytest.approx([0.875, 1.125, 0.6, 1.4, 0.6, 1.4, -0.2, 0.2])  # BraVe: 0.6-1.4, hue 0.2
    default = next(s for s in BraVe(_cfg()).views().transforms["narrow"].pipeline.transforms
                   if isinstance(s, v2.RandomApply)).transforms[0]
    assert list(default.hue) == pytest.approx([-0.1, 0.1])  # unset: the SimCLR strengths, as before
    with pytest.raises(UserError, match="random_conv_max_kernel"):
        BraVe(_cfg("method.random_conv_max_kernel=4"))
