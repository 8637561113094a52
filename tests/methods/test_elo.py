"""ELo: derived streams, every task of the bank, gradients to the right networks, weights that switch tasks off."""
import pytest
import torch

from videossl.config import load_pretrain_config
from videossl.errors import UserError
from videossl.methods.base import StepInfo
from videossl.losses.regression import normalized_mse_loss as normalized_l2
from videossl.methods.elo import ELo, TASKS, pool_tap
from videossl.transforms.video import luma as grayscale


def _cfg(*extra, frames=4):
    return load_pretrain_config(None, ["method.name=elo", f"data.num_frames={frames}", "data.frame_stride=1",
                                       "data.crop_size=32", "backbone.kwargs.input_transform=residual",
                                       "method.proj_hidden_dim=32", "method.proj_dim=16", *extra])


def _batch(method, b=4):
    return {"video": [torch.randn(b, 3, method.clip_frames, 32, 32)], "audio": [torch.randn(b, 1, 64, 101)]}


def _has_grad(module):
    return any(p.grad is not None and p.grad.abs().sum() > 0 for p in module.parameters())


def test_derived_streams_and_helpers():
    clip = torch.rand(2, 3, 4, 8, 8)
    gray = grayscale(clip)
    assert gray.shape == (2, 1, 4, 8, 8)
    assert torch.allclose(gray[:, 0], 0.299 * clip[:, 0] + 0.587 * clip[:, 1] + 0.114 * clip[:, 2])
    assert pool_tap(torch.ones(2, 5, 3, 4, 4)).shape == (2, 5) and pool_tap(torch.ones(2, 7, 6)).shape == (2, 6)
    a = torch.randn(3, 8, requires_grad=True)
    assert normalized_l2(a, 2 * a).item() == pytest.approx(0.0, abs=1e-6)  # scale-free
    t = torch.randn(3, 8, requires_grad=True)
    normalized_l2(a, t).backward()
    assert t.grad is None and a.grad is not None  # the other stream is a fixed target


def test_every_task_logged_and_gradients_reach_rgb_streams_and_heads():
    torch.manual_seed(0)
    method = ELo(_cfg())
    assert method.clip_frames == 8  # clip + the next clip for future prediction
    assert sorted(method.streams) == ["audio", "frame_diff", "gray"]
    out = method.training_step(_batch(method), StepInfo(0, 10, 0))
    assert all(f"loss_{t}" in out for t in TASKS)
    expected = sum(out[f"loss_{t}"] for t in TASKS)  # equal weights of 1
    assert torch.allclose(out["loss"], expected, atol=1e-5)
    out["loss"].backward()
    for module in [method.backbone, method.decoder, method.order_classifier, method.future_predictor,
                   *method.streams.values(), *method.distill_heads.values()]:
        assert _has_grad(module), type(module).__name__
    saved = method.extra_encoders()
    assert set(saved) == {"audio", "frame_diff", "gray"} and saved["gray"][2]["in_channels"] == 1
    assert "input_transform" not in saved["frame_diff"][2]


def test_weights_scale_terms_and_zero_switches_tasks_off():
    torch.manual_seed(0)
    method = ELo(_cfg("method.weights.future=0", "method.weights.contrastive=0", "method.weights.distillation=0",
                      "method.weights.reconstruction=3"))
    assert method.clip_frames == 4  # no future clip is sampled
    out = method.training_step(_batch(method), StepInfo(0, 10, 0))
    assert "loss_future" not in out and "loss_contrastive" not in out and "loss_distillation" not in out
    assert torch.allclose(out["loss"], 3 * out["loss_reconstruction"] + out["loss_ordering"], atol=1e-5)
    out["loss"].backward()
    assert len(method.streams) == 0 and method.views().audio_rate is None  # no stream term: no streams, no audio


@pytest.mark.parametrize("zeros", [("future",), ("contrastive",), ("distillation", "ordering"), ("reconstruction",)])
def test_every_trainable_parameter_gets_a_gradient_when_tasks_are_off(zeros):
    """What DDP without ``find_unused_parameters`` needs: only the heads of tasks with a weight > 0 exist, and
    streams that only distillation reads (a fixed teacher, never trained) are frozen."""
    torch.manual_seed(0)
    method = ELo(_cfg(*(f"method.weights.{t}=0" for t in zeros)))
    out = method.training_step(_batch(method), StepInfo(0, 10, 0))
    out["loss"].backward()
    missing = [n for n, p in method.named_parameters() if p.requires_grad and p.grad is None]
    assert missing == []
    assert all(f"loss_{t}" not in out for t in zeros)
    if zeros == ("contrastive",):  # distillation only: streams are frozen random teachers
        assert not any(p.requires_grad for p in method.streams.parameters()) and len(method.streams) == 3


def test_streams_without_audio_use_a_video_only_sampler():
    method = ELo(_cfg("method.streams=[gray]"))
    spec = method.views()
    assert spec.audio_rate is None and "audio" not in spec.transforms
    out = method.training_step({"video": [torch.randn(4, 3, 8, 32, 32)]}, StepInfo(0, 10, 0))
    assert torch.isfinite(out["loss"])


@pytest.mark.parametrize("override, message", [
    ("method.streams=[flow]", "method.streams"),
    ("method.distill_taps=[block3]", "distill_taps"),
    ("method.recon_target=depth", "recon_target"),
    ("method.weights.future=-1", "method.weights"),
])
def test_bad_settings_are_user_errors(override, message):
    with pytest.raises(UserError, match=message):
        ELo(_cfg(override))
