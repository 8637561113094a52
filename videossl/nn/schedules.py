"""Per-iteration schedules: cosine with linear warmup (learning rate, weight decay, EMA momentum); step decay
(learning rate); linear (V-JEPA's EMA momentum)."""
from __future__ import annotations

import math


def cosine_schedule(step: int, total_steps: int, base: float, final: float,
                    warmup_steps: int = 0, warmup_start: float = 0.0) -> float:
    """Value at ``step`` (0-based): linear ``warmup_start -> base`` over ``warmup_steps``, then a half cosine
    ``base -> final`` over the remaining steps (Loshchilov & Hutter, SGDR, 2017; per-iteration as in DINO)."""
    if warmup_steps > 0 and step < warmup_steps:
        return warmup_start + (base - warmup_start) * step / warmup_steps
    span = max(1, total_steps - warmup_steps)
    progress = min(1.0, (step - warmup_steps) / span)
    return final + 0.5 * (base - final) * (1.0 + math.cos(math.pi * progress))


def step_schedule(step: int, base: float, milestone_steps: list[int], gamma: float,
                  warmup_steps: int = 0, warmup_start: float = 0.0) -> float:
    """Value at ``step``: linear warm-up as :func:`cosine_schedule`, then ``base * gamma ** k`` where ``k`` counts the
    milestones already reached (``torch.optim.lr_scheduler.MultiStepLR``, per iteration). No milestones: constant."""
    if warmup_steps > 0 and step < warmup_steps:
        return warmup_start + (base - warmup_start) * step / warmup_steps
    return base * gamma ** sum(step >= m for m in milestone_steps)


def linear_schedule(step: int, total_steps: int, start: float, end: float) -> float:
    """Value at ``step``: ``start -> end`` linearly over ``total_steps`` (held at ``end`` after it). V-JEPA's EMA
    momentum (facebookresearch/jepa ``app/vjepa/train.py`` ``momentum_scheduler``: ``ema[0] + i * (ema[1] - ema[0])
    / (ipe * num_epochs * ipe_scale)``)."""
    return start + (end - start) * min(1.0, step / max(1, total_steps))
