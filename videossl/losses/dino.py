"""DINO's self-distillation loss with a centred, sharpened teacher (Caron et al., ICCV 2021)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .swav import _all_reduce
from .distributed import world_size


def dino_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], center: torch.Tensor,
              student_temp: float = 0.1, teacher_temp: float = 0.04) -> torch.Tensor:
    """DINO eq. 2-3 (and alg. 1): cross-entropy between the centred, sharpened teacher and the student.

    student: ``(B, K)`` head outputs for every crop (globals first, then locals); teacher: ``(B, K)`` for the
    global crops only, same order; center: ``(K,)`` or ``(1, K)``.

        P_t = softmax((g_t - c) / t_t), P_s = softmax(g_s / t_s)
        L = mean over pairs (i global, v any crop, v != i) of mean_b [ - sum_k P_t^i log P_s^v ]

    Temperatures: t_s = 0.1, t_t = 0.04 (warmed up to 0.04-0.07, DINO sec. 3.1 / appendix). The teacher is
    detached (stop-gradient). Per-sample, so the mean over processes equals the global-batch loss.
    """
    targets = [F.softmax((t.detach().float() - center) / teacher_temp, dim=-1) for t in teacher]
    log_probs = [F.log_softmax(s.float() / student_temp, dim=-1) for s in student]
    total, pairs = student[0].new_zeros((), dtype=torch.float32), 0
    for i, target in enumerate(targets):
        for v, log_p in enumerate(log_probs):
            if v == i:
                continue
            total = total + (-(target * log_p).sum(dim=-1)).mean()
            pairs += 1
    if pairs == 0:
        raise ValueError("DINO needs at least 2 crops (one teacher crop and one other student crop)")
    return total / pairs


@torch.no_grad()
def updated_center(center: torch.Tensor, teacher: list[torch.Tensor], momentum: float = 0.9) -> torch.Tensor:
    """DINO eq. 4: ``c <- m c + (1 - m) mean of the teacher outputs over the global batch`` (m = 0.9).

    teacher: ``(B, K)`` outputs of every global crop; the sum is all-reduced across processes, so every
    process holds the same center. Returns the new center with ``center``'s shape.
    """
    batch_sum = torch.cat(teacher).float().sum(dim=0)
    count = sum(t.shape[0] for t in teacher) * world_size()
    batch_center = _all_reduce(batch_sum) / count
    return center * momentum + batch_center.view_as(center) * (1 - momentum)


def koleo_loss(features: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """KoLeo regulariser (Sablayrolles et al., ICLR 2019; DINOv2, Oquab et al. 2023, sec. 4): ``(B, D)`` -> scalar.

    On L2-normalised features, ``-mean_i log(min_{j != i} ||x_i - x_j|| + eps)``: it grows when two samples share
    a point and so spreads the batch over the sphere, the cure DINOv2 uses against dimensional collapse. Per
    process (DINOv2 does not gather it across GPUs).
    """
    x = F.normalize(features.float(), dim=-1)
    with torch.no_grad():
        similarity = x @ x.T
        similarity.fill_diagonal_(-2.0)  # never its own neighbour
        nearest = similarity.argmax(dim=1)
    distance = (x - x[nearest]).norm(dim=-1)
    return -torch.log(distance + eps).mean()
