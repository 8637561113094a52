"""DPC the method: blocks become per-block maps, the ConvGRU context predicts the future sequentially, the
curriculum grows the predicted steps, and the loss only scores active steps."""
import pytest
import torch

from videossl.config import load_pretrain_config
from videossl.errors import UserError
from videossl.methods import METHODS
from videossl.methods.base import StepInfo


def build(*extra):
    cfg = load_pretrain_config(None, ["method.name=dpc", "data.num_frames=2", "data.crop_size=32",
                                      "method.num_blocks=5", "method.pred_steps=2", *extra])
    return METHODS["dpc"](cfg)


def test_block_features_keep_block_order():
    method = build()
    method.eval()
    blocks = torch.randn(2, 3, 10, 32, 32)  # 5 blocks x 2 frames
    maps = method.block_features(blocks)
    assert maps.shape[:2] == (2, 5) and maps.dim() == 5
    third = method.backbone.forward_tokens(blocks[:, :, 4:6]).mean(dim=2)  # block 2 on its own
    assert torch.allclose(maps[:, 2], third, atol=1e-5)


def test_prediction_is_sequential_and_uses_only_the_context():
    method = build()
    method.eval()
    maps = torch.randn(2, 5, method.backbone.num_features, 2, 2)
    pred, context = method.predict_future(maps, 2)
    assert pred.shape == (2, 2, *maps.shape[2:]) and context.shape == (2, *maps.shape[2:])
    changed = maps.clone()
    changed[:, 3:] = 0  # the future blocks must not influence the predictions
    pred2, _ = method.predict_future(changed, 2)
    assert torch.equal(pred, pred2)


def test_curriculum_grows_predicted_steps():
    method = build("method.pred_steps=3", "method.curriculum_fraction=0.5")
    steps = [method.active_steps(StepInfo(s, 100, 0)) for s in (0, 20, 30, 50, 99)]
    assert steps[0] == 1 and steps[-1] == 3 and steps == sorted(steps)
    assert build().active_steps(StepInfo(0, 100, 0)) == 2  # no curriculum: all steps from the start


def test_training_step_logs_steps_and_gives_finite_loss():
    method = build("method.curriculum_fraction=1.0")
    out = method.training_step({"video": [torch.randn(3, 3, 10, 32, 32)]}, StepInfo(0, 10, 0))
    assert torch.isfinite(out["loss"]) and out["pred_steps"].item() == 1
    out["loss"].backward()
    assert method.backbone.stem[0].weight.grad.abs().sum() > 0


def test_bad_settings_are_one_line_errors():
    with pytest.raises(UserError, match="pred_steps"):
        build("method.pred_steps=5")
    with pytest.raises(UserError, match="convolutional backbone"):
        cfg = load_pretrain_config(None, ["method.name=dpc", "data.num_frames=2", "data.crop_size=32",
                                          "backbone.name=tiny_vit2d"])
        METHODS["dpc"](cfg).block_features(torch.randn(1, 3, 16, 32, 32))
