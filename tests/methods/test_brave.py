"""BraVe: the regression loss, pairwise heads for V/V, V/A, V/VA, gradients to every tower, the view sampler."""
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from videossl.config import load_pretrain_config
from videossl.data.sampling import VideoMeta
from videossl.errors import UserError
from videossl.losses.brave import brave_pair_loss, brave_regression_loss
from videossl.methods.base import StepInfo
from videossl.methods.brave import BraVe, brave_loss, brave_predictor, brave_projector, frame_differences


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
    from pathlib import Path

    recipes = sorted((Path(__file__).resolve().parents[2] / "recipes").glob("brave_*.yaml"))
    assert len(recipes) >= 5
    settings = {r.stem: load_pretrain_config(r).method for r in recipes}
    assert {(s.broad_video, s.broad_audio) for s in settings.values()} == {(True, False), (False, True), (True, True)}


@pytest.mark.parametrize("name", ["brave_vv_k400_slow_r50", "brave_va_audioset_slow_r50", "brave_vva_audioset_slow_r50"])
def test_full_size_recipes_follow_brave_config(name):
    """google-deepmind/brave brave/config.py: narrow 16 x step 2 at 224, broad 64 x step 4 at 112, 80 mel bins,
    audio over the broad span (64 x 4 / 25 fps = 10.24 s), AdamW wd 1e-2, peak lr 2e-3; modules.py head sizes."""
    from pathlib import Path

    cfg = load_pretrain_config(Path(__file__).resolve().parents[2] / "recipes" / f"{name}.yaml")
    m, d, o = cfg.method, cfg.data, cfg.optim
    assert (d.num_frames, d.frame_stride, d.crop_size) == (16, 2, 224)
    assert (m.broad_frames, m.broad_stride, m.broad_crop_size) == (64, 4, 112)
    assert m.audio_seconds == pytest.approx(10.24) and m.n_mels == 80
    assert (m.proj_hidden_dim, m.proj_dim, m.pred_hidden_dim, m.pred_num_layers) == (512, 128, 4096, 3)
    assert (o.name, o.lr, o.weight_decay, o.min_lr) == ("adamw", pytest.approx(2e-3), pytest.approx(1e-2), 0.0)
