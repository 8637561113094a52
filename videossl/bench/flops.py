"""Model FLOPs of a training step, counted one way for ``videossl bench train`` and ``videossl plan``.

``torch.utils.flop_counter.FlopCounterMode`` over one full step of a method (its ``training_step`` forward,
then ``loss.backward()``): matmuls, convolutions and attention; the optimizer's element-wise work is not counted,
as in the MFU convention. Counted on the ``meta`` device by default, so it needs no memory and no compute and
also sizes steps too big to run; SDPA is then counted through its math decomposition (``4 B H N^2 d``
forward), which a CPU run misses (FlopCounterMode has no formula for the CPU flash kernel).

The batch is shaped exactly as the method's ``views()`` ask (``bench.peers.method_batch``: one sample through
the real pipeline, grown to the batch size), so every view of the method is counted.
"""
from __future__ import annotations

from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from videossl.methods import METHODS, StepInfo

from .peers import method_batch


def build_method(cfg: Any, device: str = "meta"):
    """``METHODS[cfg.method.name](cfg)`` built on ``device`` (``meta``: shapes only, no weights), in train mode."""
    with torch.device(device):
        return METHODS[cfg.method.name](cfg).train()


def count_step_flops(method: Any, batch: dict[str, Any]) -> dict[str, float]:
    """``{"forward", "backward", "total"}`` model FLOPs of one training step of ``method`` on ``batch`` (the
    method's parameters and the batch on one device, ``meta`` or a real one)."""
    forward, backward = FlopCounterMode(display=False), FlopCounterMode(display=False)
    with forward:
        loss = method.training_step(batch, StepInfo(0, 1000, 0))["loss"]
    with backward:
        loss.backward()
    fwd, bwd = float(forward.get_total_flops()), float(backward.get_total_flops())
    return {"forward": fwd, "backward": bwd, "total": fwd + bwd}


def training_step_flops(cfg: Any, batch_size: int, seed: int = 0, device: str = "meta") -> dict[str, float]:
    """FLOPs of one training step of ``cfg``'s method at ``batch_size`` samples per process (see the module
    docstring); ``device="cpu"`` runs the step for methods that need real values (``.item()``, ``nonzero``)."""
    method = build_method(cfg, device)
    batch = method_batch(cfg, method, batch_size, device, seed)
    return count_step_flops(method, batch)


def forward_flops(module: Any, clip: Any) -> float:
    """FLOPs of ``module(clip)`` (one forward, no gradient), e.g. a backbone on one ``(1, C, T, H, W)`` clip."""
    counter = FlopCounterMode(display=False)
    with counter, torch.no_grad():
        module(clip)
    return float(counter.get_total_flops())
