"""MemDPC: the predictor addresses a memory (softmax over slots, prediction = weights @ memory), the bypassed
memory is DPC exactly, and the backward direction reads the blocks in reverse order."""
import math

import pytest
import torch

from videossl import recipes_dir
from videossl.config import load_pretrain_config
from videossl.errors import UserError
from videossl.methods import METHODS
from videossl.methods.base import StepInfo
from videossl.methods.memdpc import MemoryBank


def build(name="memdpc", *extra):
    cfg = load_pretrain_config(None, [f"method.name={name}", "data.num_frames=2", "data.crop_size=32",
                                      "method.num_blocks=5", "method.pred_steps=2", *extra])
    torch.manual_seed(0)
    return METHODS[name](cfg)


def test_memory_read_is_softmax_weights_times_slots():
    bank = MemoryBank(3, 2)
    with torch.no_grad():
        bank.memory.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [2.0, 2.0]]))
    # one video, a 1x2 map: position 0 weights (1/4, 1/4, 1/2), position 1 weights (1/4, 3/4, 0)
    logits = torch.tensor([[0.0, 0.0, math.log(2.0)], [0.0, math.log(3.0), -1e4]]).t().reshape(1, 3, 1, 2)
    weights = bank.address(logits)
    assert torch.allclose(weights[0, :, 0, 0], torch.tensor([0.25, 0.25, 0.5]))
    assert torch.allclose(weights[0, :, 0, 1], torch.tensor([0.25, 0.75, 0.0]))
    read = bank(logits)
    assert read.shape == (1, 2, 1, 2)
    assert torch.allclose(read[0, :, 0, 0], torch.tensor([1.25, 1.25]))  # 1/4 [1,0] + 1/4 [0,1] + 1/2 [2,2]
    assert torch.allclose(read[0, :, 0, 1], torch.tensor([0.25, 0.75]))
    with pytest.raises(ValueError, match="3 slots"):
        bank(torch.zeros(1, 4, 1, 1))


def test_predictions_are_combinations_of_memory_slots():
    method = build("memdpc", "method.memory_slots=8")
    method.eval()
    d = method.backbone.num_features
    assert method.predict[-1].out_channels == 8 and method.memory.memory.shape == (8, d)
    slot = torch.randn(d)
    with torch.no_grad():
        method.memory.memory.copy_(slot.expand(8, d))  # every slot equal: any addressing reads that vector
    maps = torch.randn(2, 5, d, 2, 2)
    pred, _ = method.predict_future(maps, 2)
    assert torch.allclose(pred, slot.view(1, 1, d, 1, 1).expand_as(pred), atol=1e-5)


def test_bypassed_memory_forward_only_is_dpc():
    dpc = build("dpc")
    memdpc = build("memdpc", "method.memory_slots=0", "method.bidirectional=false")
    assert memdpc.memory is None and memdpc.aggregate_backward is None
    memdpc.load_state_dict(dpc.state_dict())  # same modules: backbone, aggregate, predict
    video = torch.randn(3, 3, 10, 32, 32)
    a = dpc.training_step({"video": [video]}, StepInfo(0, 10, 0))
    b = memdpc.training_step({"video": [video]}, StepInfo(0, 10, 0))
    assert torch.allclose(a["loss"], b["loss"], atol=1e-6) and a["top1"] == b["top1"]


def test_bidirectional_loss_is_forward_plus_reversed_prediction():
    method = build("memdpc", "method.memory_slots=16")
    forward_only = build("memdpc", "method.memory_slots=16", "method.bidirectional=false")
    forward_only.load_state_dict(method.state_dict(), strict=False)  # all but aggregate_backward
    video = torch.randn(3, 3, 10, 32, 32)
    out = method.training_step({"video": [video]}, StepInfo(0, 10, 0))
    single = forward_only.training_step({"video": [video]}, StepInfo(0, 10, 0))
    assert torch.allclose(out["loss_forward"], single["loss"], atol=1e-5)
    assert torch.allclose(out["loss"], out["loss_forward"] + out["loss_backward"], atol=1e-5)
    with torch.no_grad():
        maps = method.block_features(video)
        reversed_loss = method.prediction_loss(maps.flip(1), 2, method.aggregate_backward)[0]
        in_order_loss = method.prediction_loss(maps, 2, method.aggregate_backward)[0]
    assert torch.allclose(out["loss_backward"], reversed_loss, atol=1e-5)
    assert not torch.allclose(out["loss_backward"], in_order_loss, atol=1e-3)
    # backwards, the context is the LAST num_blocks - pred_steps blocks: the first ones must not matter
    method.eval()
    maps = torch.randn(2, 5, method.backbone.num_features, 2, 2)
    changed = maps.clone()
    changed[:, :2] = 0
    p1, _ = method.predict_future(maps.flip(1), 2, method.aggregate_backward)
    p2, _ = method.predict_future(changed.flip(1), 2, method.aggregate_backward)
    assert torch.equal(p1, p2)
    out["loss"].backward()
    assert method.memory.memory.grad.abs().sum() > 0
    assert method.aggregate_backward.candidate.weight.grad.abs().sum() > 0
    assert method.backbone.stem[0].weight.grad.abs().sum() > 0


def test_orthogonal_init_gain_and_bad_slots():
    method = build("memdpc", "method.memory_slots=16", "method.init_gain=0.1")
    w = method.predict[0].weight.flatten(1)  # (D, D) 1x1 conv
    assert torch.allclose(w @ w.t(), 0.01 * torch.eye(w.shape[0]), atol=1e-5)
    assert method.predict[0].bias.abs().max() == 0
    with pytest.raises(UserError, match="memory_slots"):
        build("memdpc", "method.memory_slots=-1")


@pytest.mark.parametrize("recipe", ["memdpc_synthetic_tiny3d", "memdpc_ucf101_r2d3d18", "memdpc_k400_r2d3d34"])
def test_recipes_load(recipe):
    root = recipes_dir()
    cfg = load_pretrain_config(root / f"{recipe}.yaml")
    assert cfg.method.name == "memdpc" and cfg.method.memory_slots == 1024 and cfg.method.bidirectional
