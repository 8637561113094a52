"""DINO (Caron et al., "Emerging Properties in Self-Supervised Vision Transformers", ICCV 2021) on video and images.

A student (backbone + DINO head) matches the output distribution of an EMA teacher on every other crop. The
teacher sees the global crops only, its outputs are centred (a momentum center over the global batch) and
sharpened (low temperature, warmed up linearly). Multi-crop: 2 global + ``num_local`` small crops; on video each
crop is a clip at its own random time (Feichtenhofer et al., CVPR 2021). Works with CNNs and ViTs.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from ..heads import DINOHead
from ..losses.dino import dino_loss, koleo_loss, updated_center
from ..nn.ema import EMATeacher
from ..nn.schedules import cosine_schedule
from .base import Method, MethodConfig, StepInfo
from .multicrop import forward_by_resolution, multicrop_views


@dataclass
class DINOConfig(MethodConfig):
    name: str = "dino"
    num_global: int = 2  # DINO: 2 x 224 px crops over 40-100% (teacher input)
    num_local: int = 6  # DINO main_dino.py: --local_crops_number 8 (96 px over 5-40%); 6 here for small runs
    local_size: int = 0  # 0: 96/224 of data.crop_size (rounded to 8 px)
    global_scale_min: float = 0.4  # DINO: global_crops_scale (0.4, 1.0) (0.14 for ResNet-50 / ViT-B)
    local_scale_max: float = 0.4  # DINO: local_crops_scale (0.05, 0.4)
    out_dim: int = 4096  # DINO: K = 65536
    hidden_dim: int = 512  # DINO head: 2048
    bottleneck_dim: int = 128  # DINO head: 256
    norm_last_layer: bool = True  # DINO main_dino.py: True (its help: False with vit_small, True with vit_base)
    use_bn_in_head: bool = False  # DINO / SVT code: --use_bn_in_head (default False): BatchNorm in the head's MLP
    student_temp: float = 0.1  # DINO: t_s = 0.1
    teacher_temp: float = 0.04  # DINO: t_t = 0.04 (0.07 after warm-up in the longer runs)
    warmup_teacher_temp: float = 0.04  # DINO: linear warm-up from 0.04 ...
    teacher_temp_warmup: float = 0.3  # ... over this fraction of training (30 of 100 epochs)
    center_momentum: float = 0.9  # DINO eq. 4: m = 0.9
    momentum_base: float = 0.996  # DINO: teacher momentum 0.996 cosine to 1
    momentum_final: float = 1.0
    freeze_last_layer_iters: int = 0  # DINO: the last layer is frozen during the first epoch
    # KoLeo on the student's backbone features of the global views (DINOv2, Oquab et al. 2023: 0.1); 0: DINO itself
    koleo_weight: float = 0.0


class DINO(Method):
    Config = DINOConfig

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        self.head = DINOHead(self.backbone.num_features, h.out_dim, h.hidden_dim, h.bottleneck_dim,
                             norm_last_layer=h.norm_last_layer, use_bn=h.use_bn_in_head)
        self.teacher = EMATeacher(nn.Sequential(self.backbone, self.head))
        self.register_buffer("center", torch.zeros(1, h.out_dim))

    def extra_encoders(self) -> dict[str, tuple[nn.Module, str, dict[str, Any]]]:
        """The EMA teacher's backbone as ``encoder_teacher.pt``: DINO and SVT evaluate the teacher
        (facebookresearch/dino eval_linear.py ``--checkpoint_key teacher``; kahnchana/svt eval_linear.py loads
        ``ckpt["teacher"]``); ``encoder.pt`` stays the student's."""
        name, kwargs = self.encoder_spec()
        return {"teacher": (self.teacher.module[0], name, kwargs)}

    def views(self):
        h = self.hparams
        return multicrop_views(self.cfg.data, h.num_global, h.num_local, h.local_size, (h.global_scale_min, 1.0),
                               (0.05, h.local_scale_max))

    def teacher_temperature(self, step: StepInfo) -> float:
        """Linear warm-up ``warmup_teacher_temp -> teacher_temp`` over ``teacher_temp_warmup`` of training."""
        h = self.hparams
        warmup_steps = int(h.teacher_temp_warmup * step.total_steps)
        if step.step >= warmup_steps:
            return h.teacher_temp
        return h.warmup_teacher_temp + (h.teacher_temp - h.warmup_teacher_temp) * step.step / warmup_steps

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        h = self.hparams
        views = batch["video"]  # globals then locals, each (B, C, T, H_v, W_v)
        features = forward_by_resolution(self.backbone, views)
        student = self._student_head(torch.cat(features), step).chunk(len(views))
        with torch.no_grad():
            teacher = forward_by_resolution(self.teacher, views[: h.num_global])
        teacher_temp = self.teacher_temperature(step)
        loss = dino_loss(list(student), teacher, self.center, h.student_temp, teacher_temp)
        self.center.copy_(updated_center(self.center, teacher, h.center_momentum))
        loss, logs = self._with_koleo(loss, features[: h.num_global])
        return {"loss": loss, **logs, "teacher_temp": torch.tensor(teacher_temp), "embedding": features[0].detach()}

    def _with_koleo(self, loss: torch.Tensor, global_features: list[torch.Tensor]) -> tuple[torch.Tensor, dict]:
        """``loss`` + ``koleo_weight`` x the sum of KoLeo over the global views' backbone features ``[(B, D)]``
        (as DINOv2 sums it over its two global crops); no change and no log when the weight is 0."""
        weight = self.hparams.koleo_weight
        if not weight:
            return loss, {}
        koleo = sum(koleo_loss(f) for f in global_features)
        return loss + weight * koleo, {"loss_koleo": koleo.detach()}

    def _student_head(self, features: torch.Tensor, step: StepInfo) -> torch.Tensor:
        """The DINO head; during the first ``freeze_last_layer_iters`` the last layer gets a zero gradient
        (DINO's ``cancel_gradients_last_layer``; a zero rather than no gradient keeps DDP in step)."""
        if step.step >= self.hparams.freeze_last_layer_iters:
            return self.head(features)
        x = nn.functional.normalize(self.head.mlp(features), dim=-1)
        weight = self.head.last_layer.weight
        return x @ (weight.detach() + 0.0 * weight).T

    def on_after_optimizer_step(self, step: StepInfo) -> None:
        h = self.hparams
        momentum = cosine_schedule(step.step, step.total_steps, h.momentum_base, h.momentum_final)
        self.teacher.update(nn.Sequential(self.backbone, self.head), momentum)
