"""DINO's self-distillation loss with a centred, sharpened teacher (Caron et al., "Emerging Properties in
Self-Supervised Vision Transformers", ICCV 2021, https://arxiv.org/abs/2104.14294), and SVT's grouping of it over
spatio-temporal view pairs (Ranasinghe et al., "Self-supervised Video Transformer", CVPR 2022,
https://arxiv.org/abs/2112.01514)."""
from __future__ import annotations

from typing import Mapping, Sequence

import torch
import torch.nn.functional as F

from .distributed import all_reduce_no_grad, world_size


def dino_pair_losses(student: Sequence[torch.Tensor], teacher: Mapping[int, torch.Tensor],
                     pairs: Sequence[tuple[int, int]], center: torch.Tensor, student_temp: float = 0.1,
                     teacher_temp: float = 0.04) -> list[torch.Tensor]:
    """DINO eq. 2-3 for each (student view s, teacher view t) of ``pairs``: one scalar per pair, in order.

    student: ``(B, K)`` head outputs of every view; teacher: ``{view index: (B, K)}`` teacher outputs of the views
    used as targets; center: ``(K,)`` or ``(1, K)``.

        P_t = softmax((g_t - c) / t_t), P_s = softmax(g_s / t_s),  loss(s, t) = mean_b [ - sum_k P_t log P_s ]

    The teacher is detached (stop-gradient); both sides are computed in float32, each softmax once per view.
    """
    used_teachers = sorted({t for _, t in pairs})
    used_students = sorted({s for s, _ in pairs})
    targets = {t: F.softmax((teacher[t].detach().float() - center) / teacher_temp, dim=-1) for t in used_teachers}
    log_probs = {s: F.log_softmax(student[s].float() / student_temp, dim=-1) for s in used_students}
    return [(-(targets[t] * log_probs[s]).sum(dim=-1)).mean() for s, t in pairs]


def dino_loss(student: list[torch.Tensor], teacher: list[torch.Tensor], center: torch.Tensor,
              student_temp: float = 0.1, teacher_temp: float = 0.04) -> torch.Tensor:
    """DINO eq. 2-3 (and alg. 1): cross-entropy between the centred, sharpened teacher and the student.

    student: ``(B, K)`` head outputs for every crop (globals first, then locals); teacher: ``(B, K)`` for the
    global crops only, same order; center: ``(K,)`` or ``(1, K)``.

        L = mean over pairs (i global, v any crop, v != i) of loss(v, i)      (:func:`dino_pair_losses`)

    Temperatures: t_s = 0.1, t_t = 0.04 (warmed up to 0.04-0.07, DINO sec. 3.1 / appendix). The teacher is
    detached (stop-gradient). Per-sample, so the mean over processes equals the global-batch loss.
    """
    pairs = [(v, i) for i in range(len(teacher)) for v in range(len(student)) if v != i]
    if not pairs:
        raise ValueError("DINO needs at least 2 crops (one teacher crop and one other student crop)")
    total = student[0].new_zeros((), dtype=torch.float32)
    for term in dino_pair_losses(student, dict(enumerate(teacher)), pairs, center, student_temp, teacher_temp):
        total = total + term
    return total / len(pairs)


def svt_losses(student: Sequence[torch.Tensor], teacher: Mapping[int, torch.Tensor],
               pairs: Mapping[str, Sequence[tuple[int, int]]], center: torch.Tensor, student_temp: float = 0.1,
               teacher_temp: float = 0.04) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """SVT's objective (sec. 3.3, cross-view ``l->g`` and motion ``g->g`` correspondence): DINO's cross-entropy
    (:func:`dino_pair_losses`) over the (student view, teacher view) pairs of each enabled pairing.

    student: ``(B, K)`` head outputs of every view; teacher: ``{view index: (B, K)}`` for the target views;
    pairs: ``{pairing name: [(student view, teacher view), ...]}``; center: ``(1, K)``. Returns (mean over all
    pairs, as SVT's released code's ``DINOLoss``; ``{pairing: mean over its pairs}`` detached for logging).
    With the pairs ``l->g`` + ``g->g`` it equals :func:`dino_loss` over the teacher's globals.
    """
    flat = [pair for pair_list in pairs.values() for pair in pair_list]
    terms = iter(dino_pair_losses(student, teacher, flat, center, student_temp, teacher_temp))
    total, count, parts = student[0].new_zeros((), dtype=torch.float32), 0, {}
    for pairing, pair_list in pairs.items():
        part = student[0].new_zeros((), dtype=torch.float32)
        for _ in pair_list:
            part = part + next(terms)
        total, count = total + part, count + len(pair_list)
        parts[pairing] = (part / max(len(pair_list), 1)).detach()
    if count == 0:
        raise ValueError("SVT: the enabled view pairings give no (student, teacher) pair")
    return total / count, parts


@torch.no_grad()
def updated_center(center: torch.Tensor, teacher: list[torch.Tensor], momentum: float = 0.9) -> torch.Tensor:
    """DINO eq. 4: ``c <- m c + (1 - m) mean of the teacher outputs over the global batch`` (m = 0.9).

    teacher: ``(B, K)`` outputs of every global crop; the sum is all-reduced across processes, so every
    process holds the same center. Returns the new center with ``center``'s shape.
    """
    batch_sum = torch.cat(teacher).float().sum(dim=0)
    count = sum(t.shape[0] for t in teacher) * world_size()
    batch_center = all_reduce_no_grad(batch_sum) / count
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
