"""Optimizers (AdamW, Adam with coupled L2, SGD, LARS) with parameter groups, and the per-iteration schedule that
drives them."""
from __future__ import annotations

import re

from lightly.utils.lars import LARS
from torch import nn
from torch.optim import Adam, AdamW, Optimizer, SGD

from ..errors import UserError
from ..nn.schedules import cosine_schedule, step_schedule

OPTIMIZERS = ("adamw", "adam", "sgd", "lars")
LR_SCHEDULES = ("cosine", "step", "constant")


def lr_scale_of(name: str, lr_scale: dict[str, float]) -> float:
    """The factor of the first regex in ``lr_scale`` that ``re.search``-matches parameter ``name`` (else 1)."""
    for pattern, factor in lr_scale.items():
        if re.search(pattern, name):
            return float(factor)
    return 1.0


def parameter_groups(model: nn.Module, weight_decay: float, exclude_bias_and_norm: bool,
                     lr_scale: dict[str, float] | None = None) -> list[dict]:
    """Groups by (decayed or not, lr factor): decayed weights and (if ``exclude_bias_and_norm``) biases / norm
    parameters with no weight decay, which LARS also leaves unadapted (SimCLR / BYOL practice; You et al. 2017).
    ``lr_scale`` ({regex: factor}, ``optim.lr_scale``) gives matching parameters ``lr x factor`` (BraVe's
    ``scale_learning_rate_by_regex``); each group records its ``lr_scale`` for ``apply_schedules``."""
    lr_scale = dict(lr_scale or {})
    for pattern in lr_scale:
        try:
            re.compile(pattern)
        except re.error as e:
            raise UserError(f"optim.lr_scale: '{pattern}' is not a regular expression ({e})") from None
    buckets: dict[tuple[bool, float], list[nn.Parameter]] = {}
    for name, p in model.named_parameters():
        if not p.requires_grad:
            continue
        no_decay = exclude_bias_and_norm and (p.ndim <= 1 or name.endswith(".bias"))
        buckets.setdefault((no_decay, lr_scale_of(name, lr_scale)), []).append(p)
    groups = [{"params": params, "weight_decay": 0.0 if no_decay else weight_decay, "apply_wd": not no_decay,
               "lr_scale": factor} for (no_decay, factor), params in sorted(buckets.items(), key=lambda kv: kv[0])]
    return groups or [{"params": [], "weight_decay": weight_decay, "apply_wd": True, "lr_scale": 1.0}]


def build_optimizer(model: nn.Module, optim_cfg) -> Optimizer:
    """``optim_cfg``: an ``OptimConfig``. The learning rate is set per step by ``apply_schedules``."""
    check_lr_schedule(optim_cfg)
    groups = parameter_groups(model, optim_cfg.weight_decay, optim_cfg.exclude_bias_and_norm,
                              dict(optim_cfg.get("lr_scale") or {}))
    name, nesterov = optim_cfg.name, bool(optim_cfg.get("nesterov", False))
    if name == "adamw":  # decoupled weight decay (Loshchilov & Hutter 2019)
        return AdamW(groups, lr=optim_cfg.lr, betas=tuple(optim_cfg.betas))
    if name == "adam":  # coupled L2: weight_decay x w is added to the gradient before the moments (torch Adam)
        return Adam(groups, lr=optim_cfg.lr, betas=tuple(optim_cfg.betas))
    if name == "sgd":
        return SGD(groups, lr=optim_cfg.lr, momentum=optim_cfg.momentum, nesterov=nesterov)
    if name == "lars":
        return LARS(groups, lr=optim_cfg.lr, momentum=optim_cfg.momentum, trust_coefficient=optim_cfg.lars_eta,
                    nesterov=nesterov)
    raise UserError(f"unknown optimizer 'optim.name={name}'; choose from {', '.join(OPTIMIZERS)}")


def check_lr_schedule(optim_cfg) -> None:
    """A clear error for an unknown ``optim.lr_schedule`` or milestones that are not ascending epochs >= 0."""
    if optim_cfg.lr_schedule not in LR_SCHEDULES:
        raise UserError(f"unknown 'optim.lr_schedule={optim_cfg.lr_schedule}'; choose from {', '.join(LR_SCHEDULES)}")
    milestones = [float(m) for m in optim_cfg.lr_milestones]
    if any(m < 0 for m in milestones) or milestones != sorted(milestones):
        raise UserError(f"optim.lr_milestones must be ascending epochs >= 0, got {milestones}")
    if optim_cfg.lr_schedule != "step" and milestones:
        raise UserError(f"optim.lr_milestones is set but optim.lr_schedule is '{optim_cfg.lr_schedule}'; "
                        "use optim.lr_schedule=step")


def learning_rate(optim_cfg, step: int, total_steps: int, steps_per_epoch: int) -> float:
    """The learning rate at ``step`` under ``optim.lr_schedule`` (warm-up included)."""
    warmup = int(round(optim_cfg.warmup_epochs * steps_per_epoch))
    if optim_cfg.lr_schedule == "cosine":
        return cosine_schedule(step, total_steps, optim_cfg.lr, optim_cfg.min_lr, warmup, optim_cfg.warmup_start_lr)
    milestones = [int(round(float(m) * steps_per_epoch)) for m in optim_cfg.lr_milestones]  # none for constant
    return step_schedule(step, optim_cfg.lr, milestones, optim_cfg.lr_gamma, warmup, optim_cfg.warmup_start_lr)


def apply_schedules(optimizer: Optimizer, optim_cfg, step: int, total_steps: int, steps_per_epoch: int) -> dict[str, float]:
    """Set this step's learning rate and weight decay on every group; returns them for logging."""
    lr = learning_rate(optim_cfg, step, total_steps, steps_per_epoch)
    wd_end = optim_cfg.weight_decay if optim_cfg.weight_decay_end is None else optim_cfg.weight_decay_end
    wd = cosine_schedule(step, total_steps, optim_cfg.weight_decay, wd_end)
    for group in optimizer.param_groups:
        group["lr"] = lr * group.get("lr_scale", 1.0)
        if group.get("apply_wd", True):
            group["weight_decay"] = wd
    return {"lr": lr, "wd": wd}
