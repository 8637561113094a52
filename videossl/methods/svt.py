"""SVT (Ranasinghe et al., "Self-supervised Video Transformer", CVPR 2022).

DINO-style self-distillation between spatio-temporal views of one video, all cut from one decode:

- 2 **global** clips: large crop (224 px), long time spans at different frame rates;
- several **local** clips: small crop (96 px), short time windows, fewer frames at varied rates.

The student (video ViT + DINO head) sees every view; the teacher (EMA of the student) sees the globals, and
the locals too when a pairing asks for local targets. The centre is DINO's: a running mean of the teacher's
outputs on the global views only, whichever pairings are on. A TimeSformer takes any frame count and crop size:
its space and time position tables are interpolated to each view's grid (SVT's dynamic positional
embedding; ``videossl.backbones.video_vit``). The paper's two losses are DINO's cross-entropy between a
centred, sharpened teacher distribution and the student's (Caron et al. 2021, eq. 2-4):

- cross-view correspondence ``l->g``: a local student view predicts each global teacher view;
- motion correspondence ``g->g``: a global student view predicts the other global teacher view (a long span
  at another frame rate). With ``method.window_frames > 0`` all views come from one window as in SVT's code
  (both globals cover nearly all of it, the locals 1/8 of it); with 0 ``SVTSampler`` places each view at its
  own random time with the configured strides.

``x->y`` below means "the student's ``x`` view predicts the teacher's ``y`` view"; ``l->l`` and ``g->l`` are
the extra pairings of SVT's view-correspondence ablation (its numbers were not found in a stored file; SVT's
released code, kahnchana/svt train_ssl.py, implements l->g + g->g only). As in that code (its ``DINOLoss`` over
teacher-global x student-all pairs), the total loss is the mean over all enabled (student view, teacher view)
pairs of different views.

Initialisation from an image ViT (``method.image_weights``) inflates it to the TimeSformer as SVT /
TimeSformer do (``videossl.backbones.inflate``). ``data.num_frames=1`` makes every view one frame (images).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from ..backbones.inflate import inflate_image_vit
from ..data.sampling import SVTSampler, ViewSpec
from ..errors import UserError
from ..losses.dino import svt_losses, updated_center
from ..transforms.video import build_multicrop_transforms
from .base import StepInfo
from .dino import DINO, DINOConfig
from .multicrop import forward_by_resolution, local_crop_size

PAIRINGS = ("l->g", "g->g", "l->l", "g->l")  # student view kind -> teacher view kind


@dataclass
class SVTConfig(DINOConfig):
    """SVT's views and pairings on top of DINO's head, temperatures, center and EMA settings.

    Frame counts follow SVT's released code (kahnchana/svt ``datasets/decoder.py`` ``decode``, ``temporal_aug``
    with ``DATA.RAND_FR``): over a decoded window of 8 x 32 = 256 frames at 30 fps, global 1 takes 4 frames over
    ``[0, W-5]`` and global 2 takes 8 frames over ``[5, W]``; the 8 locals take 2, 2, 4, 4, 8, 8, 16, 16 frames
    spread over a random sub-window of W/8. (Without RAND_FR, the default of SVT's ``utils/defaults.py``, every
    view has ``DATA.NUM_FRAMES`` = 8 frames.) ``window_frames`` = W turns that sampling on; 0 keeps videossl's
    per-view sampling: global g every ``global_strides[g]`` frames, locals at a stride drawn per sample from
    ``local_strides``, each view at its own random time.

    Also from SVT's code (``train_ssl.py``): DINO head 2048 hidden / 256 bottleneck / K = 65536 with
    ``norm_last_layer`` True; teacher temperature 0.04 without warm-up (``warmup_teacher_temp_epochs`` 0);
    student temperature 0.1; centre momentum 0.9 over the teacher's global outputs; EMA 0.996 cosine to 1;
    loss = mean over (teacher global t, student view s != t) pairs (its ``DINOLoss``).
    """

    name: str = "svt"
    num_global: int = 2  # SVT: 2 global views (teacher input)
    num_local: int = 8  # SVT: 8 local views
    global_frames: list[int] = field(default_factory=lambda: [4, 8])  # SVT code (RAND_FR): 4 and 8 frames
    global_strides: list[int] = field(default_factory=lambda: [80, 32])  # both span ~8 s at 30 fps
    local_frames: list[int] = field(default_factory=lambda: [2, 4, 8, 16])  # SVT: 2, 4, 8, 16 frames
    local_strides: list[int] = field(default_factory=lambda: [2, 4, 8])  # short windows (SVT: 1/8 of the span)
    window_frames: int = 0  # >0: SVT code's one-window sampling over this many frames (SVT: 256); strides unused
    local_size: int = 0  # 0: 96/224 of data.crop_size (SVT: 96 px locals, 224 px globals)
    global_scale_min: float = 0.4  # SVT = DINO: global crops over (0.4, 1), local crops over (0.05, 0.4)
    local_scale_max: float = 0.4
    out_dim: int = 65536  # SVT = DINO: K = 65536
    hidden_dim: int = 2048
    bottleneck_dim: int = 256
    teacher_temp: float = 0.04  # SVT code: 0.04, no warm-up
    warmup_teacher_temp: float = 0.04
    teacher_temp_warmup: float = 0.0
    local_to_global: bool = True  # l->g, cross-view correspondence (SVT)
    global_to_global: bool = True  # g->g, motion correspondence (SVT)
    local_to_local: bool = False  # l->l (SVT tab. 3 ablation; the teacher then also sees the locals)
    global_to_local: bool = False  # g->l (SVT tab. 3 ablation)
    image_weights: str = ""  # local image ViT checkpoint inflated into the TimeSformer (SVT: ImageNet ViT-B)


def forward_by_shape(module: nn.Module, views: list[torch.Tensor]) -> list[torch.Tensor]:
    """``forward_by_resolution`` after grouping views of equal shape, wherever they are in the list (SVT's
    locals alternate frame counts). views: ``[(B, C, T_v, H_v, W_v)]``; returns one output per view, in order."""
    order = sorted(range(len(views)), key=lambda i: tuple(views[i].shape))
    outputs = forward_by_resolution(module, [views[i] for i in order])
    result: list[torch.Tensor] = [outputs[0]] * len(views)
    for position, index in enumerate(order):
        result[index] = outputs[position]
    return result


def view_pairs(num_global: int, num_local: int, pairings: tuple[str, ...]) -> dict[str, list[tuple[int, int]]]:
    """``{pairing: [(student view, teacher view), ...]}`` over views numbered globals first, then locals;
    a view is never paired with itself."""
    kinds = {"g": range(num_global), "l": range(num_global, num_global + num_local)}
    pairs = {}
    for pairing in pairings:
        student_kind, teacher_kind = pairing.split("->")
        pairs[pairing] = [(s, t) for t in kinds[teacher_kind] for s in kinds[student_kind] if s != t]
    return pairs


class SVT(DINO):
    Config = SVTConfig
    smoke_overrides = ("backbone.name=tiny_timesformer", "method.num_local=2", "method.global_frames=[4,2]",
                       "method.global_strides=[1,2]", "method.local_frames=[2,1]", "method.local_strides=[1,2]",
                       "method.out_dim=256", "method.hidden_dim=64", "method.bottleneck_dim=32")

    def __init__(self, cfg):
        super().__init__(cfg)  # DINO: backbone, DINO head, EMA teacher, center
        h = self.hparams
        self.pairs = view_pairs(h.num_global, h.num_local, self.enabled_pairings())
        empty = [p for p, pairs in self.pairs.items() if not pairs]
        if empty:
            raise UserError(f"method: pairing {empty[0]} has no view pairs with num_global={h.num_global}, "
                            f"num_local={h.num_local}; turn it off or add views")
        if h.image_weights:
            inflate_image_vit(self.backbone, h.image_weights)
            self.teacher.module[0].load_state_dict(self.backbone.state_dict())  # teacher starts as the student

    def enabled_pairings(self) -> tuple[str, ...]:
        h = self.hparams
        switches = (h.local_to_global, h.global_to_global, h.local_to_local, h.global_to_local)
        enabled = tuple(p for p, on in zip(PAIRINGS, switches) if on)
        if not enabled:
            raise UserError("method: every view pairing is off; turn on at least one of local_to_global, "
                            "global_to_global, local_to_local, global_to_local")
        return enabled

    def view_frames(self) -> tuple[list[int], list[int], list[int]]:
        """(frames per global, strides per global, local frame counts); all 1 when ``data.num_frames=1``."""
        h = self.hparams
        frames, strides, local = list(h.global_frames), list(h.global_strides), list(h.local_frames)
        if not frames or len(frames) != len(strides) or not local:
            raise UserError("method: global_frames and global_strides need the same (non-zero) length and "
                            f"local_frames at least one entry, got {frames}, {strides}, {local}")
        if h.window_frames < 0:
            raise UserError(f"method.window_frames must be 0 (per-view sampling) or positive, got {h.window_frames}")
        frames = [frames[g % len(frames)] for g in range(h.num_global)]
        strides = [strides[g % len(strides)] for g in range(h.num_global)]
        if int(self.cfg.data.num_frames) == 1:  # images: every view is one frame (the T=1 case of video)
            frames, local = [1] * len(frames), [1]
        return frames, strides, local

    def views(self):
        h = self.hparams
        frames, strides, local = self.view_frames()
        sampler = SVTSampler(global_frames=tuple(frames), global_strides=tuple(strides), num_local=h.num_local,
                             local_frames=tuple(local), local_strides=tuple(h.local_strides),
                             window_frames=h.window_frames)
        size = int(self.cfg.data.crop_size)
        transforms = build_multicrop_transforms(size, h.local_size or local_crop_size(size),
                                                (h.global_scale_min, 1.0), (0.05, h.local_scale_max))
        return ViewSpec(sampler=sampler, transforms=transforms)

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        h = self.hparams
        views = batch["video"]  # globals then locals, each (B, C, T_v, H_v, W_v)
        features = forward_by_shape(self.backbone, views)  # [(B, D)]
        student = self._student_head(torch.cat(features), step).chunk(len(views))  # DINO head, last-layer freeze
        # the teacher sees the views a pairing targets, and always the globals: DINO's centre is the running mean
        # of the teacher's outputs on the global views only (facebookresearch/dino main_dino.py, DINOLoss.update_center
        # over teacher(images[:2]); SVT's train_ssl.py the same), also when l->l / g->l add local targets
        targets = sorted({t for pairs in self.pairs.values() for _, t in pairs} | set(range(h.num_global)))
        with torch.no_grad():
            teacher = dict(zip(targets, forward_by_shape(self.teacher, [views[t] for t in targets])))
        teacher_temp = self.teacher_temperature(step)
        loss, parts = svt_losses(list(student), teacher, self.pairs, self.center, h.student_temp, teacher_temp)
        global_outputs = [teacher[g] for g in range(h.num_global)]
        self.center.copy_(updated_center(self.center, global_outputs, h.center_momentum))
        logs = {f"loss_{p.replace('->', '2')}": v for p, v in parts.items()}  # loss_l2g, loss_g2g, ...
        loss, koleo = self._with_koleo(loss, list(features[: h.num_global]))
        logs.update(koleo)
        return {"loss": loss, **logs, "teacher_temp": torch.tensor(teacher_temp), "embedding": features[0].detach()}
