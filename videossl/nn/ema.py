"""Exponential moving average teachers (BYOL's target network, DINO's teacher, MoCo's key encoder)."""
from __future__ import annotations

import copy

import torch
from torch import nn


class EMATeacher(nn.Module):
    """A frozen copy of ``student`` updated as ``teacher = m * teacher + (1 - m) * student``.

    The momentum ``m`` comes from a per-iteration schedule (BYOL: cosine from 0.996 to 1, Grill et al. 2020,
    sec. 3.2). Buffers (BatchNorm running statistics) are copied, not averaged, as in MoCo and BYOL.
    """

    def __init__(self, student: nn.Module):
        super().__init__()
        self.module = copy.deepcopy(student)
        for p in self.module.parameters():
            p.requires_grad_(False)

    def forward(self, *args, **kwargs):
        return self.module(*args, **kwargs)

    @torch.no_grad()
    def update(self, student: nn.Module, momentum: float) -> None:
        teacher_params = list(self.module.parameters())
        student_params = [p.detach() for p in student.parameters()]
        torch._foreach_lerp_(teacher_params, student_params, 1.0 - momentum)
        for tb, sb in zip(self.module.buffers(), student.buffers()):
            tb.copy_(sb)
