"""Optimizers, parameter groups and the per-iteration schedules they are driven by."""
import pytest
import torch
from omegaconf import OmegaConf
from torch import nn

from videossl.config import OptimConfig
from videossl.engine.optim import apply_schedules, build_optimizer, parameter_groups
from videossl.errors import UserError


def tiny_model():
    return nn.Sequential(nn.Linear(4, 8), nn.BatchNorm1d(8), nn.ReLU(), nn.Linear(8, 2))


def test_bias_and_norm_get_no_weight_decay():
    groups = parameter_groups(tiny_model(), 0.1, exclude_bias_and_norm=True)
    assert [p.shape for p in groups[0]["params"]] == [torch.Size([8, 4]), torch.Size([2, 8])]
    assert groups[1]["weight_decay"] == 0.0 and len(groups[1]["params"]) == 4
    assert len(parameter_groups(tiny_model(), 0.1, exclude_bias_and_norm=False)) == 1


@pytest.mark.parametrize("name", ["adamw", "sgd", "lars"])
def test_every_optimizer_steps_and_follows_the_schedule(name):
    cfg = OmegaConf.structured(OptimConfig(name=name, lr=0.5, min_lr=0.0, warmup_epochs=1, weight_decay=0.1,
                                           weight_decay_end=0.3))
    model = tiny_model()
    opt = build_optimizer(model, cfg)
    before = model[0].weight.detach().clone()
    got = apply_schedules(opt, cfg, step=5, total_steps=20, steps_per_epoch=10)  # halfway through warmup
    assert got["lr"] == pytest.approx(0.25)
    assert got["wd"] == pytest.approx(0.1 + 0.2 * 0.5 * (1 - torch.cos(torch.tensor(5 / 20 * torch.pi)).item()))
    assert [g["lr"] for g in opt.param_groups] == [0.25, 0.25]
    assert opt.param_groups[1]["weight_decay"] == 0.0  # biases and norms stay undecayed
    model(torch.randn(6, 4)).pow(2).mean().backward()
    opt.step()
    assert not torch.equal(before, model[0].weight)
    end = apply_schedules(opt, cfg, step=20, total_steps=20, steps_per_epoch=10)
    assert end["lr"] == pytest.approx(0.0) and end["wd"] == pytest.approx(0.3)


def test_unknown_optimizer_is_a_user_error():
    cfg = OmegaConf.structured(OptimConfig(name="adagrad"))
    with pytest.raises(UserError, match="unknown optimizer 'optim.name=adagrad'"):
        build_optimizer(tiny_model(), cfg)


def test_step_schedule_decays_at_the_milestone_epochs_after_warmup():
    cfg = OmegaConf.structured(OptimConfig(lr=1e-3, lr_schedule="step", lr_milestones=[2, 3.5], lr_gamma=0.1,
                                           warmup_epochs=1, warmup_start_lr=0.0))
    optimizer = build_optimizer(tiny_model(), cfg)
    lrs = [apply_schedules(optimizer, cfg, step, total_steps=50, steps_per_epoch=10)["lr"] for step in range(50)]
    assert lrs[0] == 0.0 and lrs[5] == pytest.approx(5e-4)  # linear warm-up over the first epoch
    assert lrs[10] == lrs[19] == pytest.approx(1e-3)  # then flat until epoch 2 ...
    assert lrs[20] == lrs[34] == pytest.approx(1e-4)  # x 0.1 from step 20 ...
    assert lrs[35] == lrs[49] == pytest.approx(1e-5)  # and again from epoch 3.5 (MultiStepLR, per iteration)
    assert all(group["lr"] == lrs[-1] for group in optimizer.param_groups)
    constant = OmegaConf.structured(OptimConfig(lr=2e-3, lr_schedule="constant"))
    assert {apply_schedules(optimizer, constant, s, 50, 10)["lr"] for s in (0, 25, 49)} == {2e-3}


@pytest.mark.parametrize("settings, message", [
    ({"lr_schedule": "poly"}, "optim.lr_schedule=poly"),
    ({"lr_schedule": "step", "lr_milestones": [5, 2]}, "ascending"),
    ({"lr_milestones": [5]}, "use optim.lr_schedule=step"),
])
def test_bad_lr_schedules_are_user_errors(settings, message):
    with pytest.raises(UserError, match=message):
        build_optimizer(tiny_model(), OmegaConf.structured(OptimConfig(**settings)))


def test_accumulation_and_clipping_run_through_the_engine(tiny_pool, tiny_overrides, tmp_path):
    from videossl.config import load_pretrain_config
    from videossl.engine.trainer import pretrain

    cfg = load_pretrain_config(None, tiny_overrides(tiny_pool, tmp_path / "run", frames=2, steps=2) + [
        "optim.accumulate=2", "optim.clip_grad=1.0", "optim.name=lars", "train.batch_size=2"])
    run_dir = pretrain(cfg)
    ckpt = torch.load(run_dir / "last.ckpt", weights_only=True)
    assert ckpt["step"] == 2 and ckpt["batch_in_epoch"] == 4  # 2 optimizer steps x 2 micro-batches


def test_adam_applies_coupled_l2_weight_decay():
    """optim.name=adam (DPC / MemDPC's torch.optim.Adam): the decay enters the gradient before the moments, so the
    first step is -lr * sign(g + wd * w); AdamW's decoupled decay gives a different step."""
    torch.manual_seed(0)
    steps = {}
    for name in ("adam", "adamw"):
        layer = nn.Linear(4, 3, bias=False)
        with torch.no_grad():
            layer.weight.copy_(torch.linspace(-1, 1, 12).view(3, 4))
        start = layer.weight.detach().clone()
        cfg = OmegaConf.structured(OptimConfig(name=name, lr=0.1, weight_decay=10.0, exclude_bias_and_norm=False))
        optimizer = build_optimizer(layer, cfg)
        grad = torch.full_like(start, 0.01)
        layer.weight.grad = grad.clone()
        optimizer.step()
        steps[name] = layer.weight.detach() - start
        if name == "adam":
            coupled = grad + 10.0 * start  # Adam's first step is lr * m / sqrt(v) = lr * sign(g + wd w)
            assert torch.allclose(steps[name], -0.1 * torch.sign(coupled), atol=1e-6)
        else:
            expected = -0.1 * 10.0 * start - 0.1 * torch.sign(grad)  # decoupled: w -= lr wd w, then lr sign(g)
            assert torch.allclose(steps[name], expected, atol=1e-5)
    assert not torch.allclose(steps["adam"], steps["adamw"])


def test_lr_scale_by_regex_multiplies_the_scheduled_lr():
    model = nn.Sequential(nn.Linear(3, 3), nn.Linear(3, 2))  # parameters "0.weight", "0.bias", "1.weight", "1.bias"
    cfg = OmegaConf.structured(OptimConfig(name="sgd", lr=0.5, lr_schedule="constant", lr_scale={"^1\\.": 10.0}))
    optimizer = build_optimizer(model, cfg)
    apply_schedules(optimizer, cfg, step=0, total_steps=10, steps_per_epoch=5)
    by_param = {id(p): g["lr"] for g in optimizer.param_groups for p in g["params"]}
    assert by_param[id(model[0].weight)] == 0.5 and by_param[id(model[0].bias)] == 0.5
    assert by_param[id(model[1].weight)] == 5.0 and by_param[id(model[1].bias)] == 5.0
    bad = OmegaConf.structured(OptimConfig(lr_scale={"(": 2.0}))
    with pytest.raises(UserError, match="optim.lr_scale"):
        build_optimizer(model, bad)
