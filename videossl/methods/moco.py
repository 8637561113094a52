"""MoCo v2 (Chen et al., "Improved Baselines with Momentum Contrastive Learning", 2020) and MoCo v3 (Chen, Xie &
He, "An Empirical Study of Training Self-Supervised Vision Transformers", ICCV 2021) on video and images.

Video: the positives are rho >= 2 clips of one video at random times (Feichtenhofer et al., CVPR 2021, where
rho-MoCo is one of the four studied methods); every ordered pair (query clip i, key clip j != i) is used. At
T=1 they are two crops of one frame: image MoCo.

MoCo v2: momentum key encoder (m = 0.999), a queue of K keys as negatives, shuffled BN for the key encoder
(the keys of the global batch are shuffled across processes, and optionally split into ``key_bn_splits``
groups per process, MoCo's single-GPU "SplitBatchNorm", so a query and its key never share BN statistics).
rho-MoCo as the study's code runs it (facebookresearch/SlowFast slowfast/models/contrastive.py with
configs/contrastive_ssl/MoCo_SlowR50_8x8.yaml), each an option off by default: ``momentum_annealing``
(MOMENTUM_ANNEALING: m = 1 - (1 - m_0) (cos(pi k / K) + 1) / 2 over the K training iterations),
``proj_num_layers`` (NUM_MLP_LAYERS: 3, no BN), ``multi_view_queue`` (MOCO_MULTI_VIEW_QUEUE: the keys of all
rho clips are enqueued, not only the first clip's) and ``sum_over_queries`` (SEQUENTIAL: every clip in turn is
the query against the other rho - 1 clips' keys and the queue; each query's mean loss is backpropagated on its
own, so the rho query losses add up: rho x the mean over ordered pairs that is the default).
MoCo v3: no queue; in-batch negatives from the global batch; a predictor; symmetric loss; momentum cosine
0.99 -> 1; for ViTs the patch projection can be frozen at its random init (MoCo v3 sec. 5).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from ..errors import UserError
from ..heads import PredictionHead, ProjectionHead
from ..losses.distributed import gather_no_grad, rank, world_size
from ..losses.moco import moco_queue_loss, moco_v3_loss
from ..nn.ema import EMATeacher
from ..nn.schedules import cosine_schedule
from .base import Method, MethodConfig, StepInfo, concat_views
from .views import RhoViewsConfig, rho_augment, rho_clip_views


@dataclass
class MoCoV2Config(RhoViewsConfig):
    name: str = "moco_v2"
    num_clips: int = 2  # rho (SlowFast MoCo_SlowR50_8x8.yaml: TRAIN_CROP_NUM_TEMPORAL 4)
    proj_hidden_dim: int = 512  # MoCo v2: 2048-d hidden MLP for ResNet-50 (SlowFast CONTRASTIVE.MLP_DIM 2048)
    proj_dim: int = 128  # MoCo: 128-d embeddings
    proj_num_layers: int = 2  # MoCo v2: 2-layer MLP head; SlowFast MoCo_SlowR50_8x8.yaml NUM_MLP_LAYERS: 3
    queue_size: int = 4096  # MoCo: K = 65536 on ImageNet; SlowFast CONTRASTIVE.QUEUE_LEN default 65536
    temperature: float = 0.2  # MoCo v2: t = 0.2; SlowFast MoCo_SlowR50_8x8.yaml T: 0.1
    momentum: float = 0.999  # MoCo: m = 0.999, constant; SlowFast MoCo_SlowR50_8x8.yaml MOMENTUM: 0.994
    momentum_annealing: bool = False  # SlowFast MOMENTUM_ANNEALING: cosine from `momentum` to 1 over training
    multi_view_queue: bool = False  # SlowFast MOCO_MULTI_VIEW_QUEUE: enqueue every clip's keys (else the first's)
    sum_over_queries: bool = False  # SlowFast SEQUENTIAL: the rho query losses add up (loss x rho)
    shuffle_bn: bool = True  # MoCo sec. 3.3: shuffling BN
    key_bn_splits: int = 1  # key-encoder BN groups per process (MoCo's SplitBatchNorm emulation on one GPU)


class MoCoV2(Method):
    Config = MoCoV2Config

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        # MoCo v2: 2-layer MLP head (no BN) on top of the pooled features; rho-MoCo (SlowFast): 3 layers, no BN.
        if h.proj_num_layers < 2:
            raise UserError(f"method.proj_num_layers must be >= 2, got {h.proj_num_layers}")
        self.projector = ProjectionHead(self.backbone.num_features, h.proj_hidden_dim, h.proj_dim,
                                        num_layers=h.proj_num_layers, batch_norm=False)
        self.key_encoder = EMATeacher(nn.Sequential(self.backbone, self.projector))
        self.register_buffer("queue", F.normalize(torch.randn(h.queue_size, h.proj_dim), dim=1))
        self.register_buffer("queue_ptr", torch.zeros((), dtype=torch.long))
        self._pending_keys: list[torch.Tensor] | None = None

    def views(self):
        return rho_clip_views(self.cfg.data, self.hparams.num_clips, augment=rho_augment(self.hparams))

    def key_momentum(self, step: StepInfo) -> float:
        """The key encoder's momentum at ``step``: constant, or with ``momentum_annealing`` SlowFast's
        ``momentum_anneal_cosine``, 1 - (1 - m_0) (cos(pi k / K) + 1) / 2 at iteration k of K."""
        h = self.hparams
        if not h.momentum_annealing:
            return float(h.momentum)
        return cosine_schedule(step.step, step.total_steps, float(h.momentum), 1.0)

    @torch.no_grad()
    def _keys(self, x: torch.Tensor, step: StepInfo) -> torch.Tensor:
        """Key-encoder outputs ``(B, D)`` for this process's inputs ``(B, C, T, H, W)``, through shuffled BN."""
        h = self.hparams
        if not h.shuffle_bn:
            return self.key_encoder(x)
        batch = x.shape[0]
        inputs = gather_no_grad(x)  # (world * B, ...)
        # The same permutation on every process without communication: seeded by the step.
        gen = torch.Generator().manual_seed(int(self.cfg.train.seed) * 1_000_003 + step.step)
        perm = torch.randperm(inputs.shape[0], generator=gen).to(x.device)
        mine = inputs[perm].chunk(world_size())[rank()]
        if mine.shape[0] % h.key_bn_splits:
            raise UserError(f"method.key_bn_splits={h.key_bn_splits} must divide the per-process batch {batch}")
        out = torch.cat([self.key_encoder(part) for part in mine.chunk(h.key_bn_splits)])
        shuffled = gather_no_grad(out)
        keys = torch.empty_like(shuffled)
        keys[perm] = shuffled
        return keys[rank() * batch:(rank() + 1) * batch]

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        views = batch["video"]  # rho x (B, C, T, H, W)
        queries = self.projector(self.backbone(concat_views(views))).chunk(len(views))
        keys = [self._keys(v, step) for v in views]
        pairs = [(i, j) for i in range(len(views)) for j in range(len(views)) if i != j]
        h = self.hparams
        loss = sum(moco_queue_loss(queries[i], keys[j], self.queue, h.temperature) for i, j in pairs) / len(pairs)
        if h.sum_over_queries:  # SlowFast: sum over the rho queries of each query's mean over its rho - 1 keys
            loss = loss * len(views)
        # enqueued after the optimizer step, so every query of this step saw the same queue (as SlowFast, which
        # enqueues after all rho sequential queries): every clip's keys with multi_view_queue, else the first's
        enqueue = keys if h.multi_view_queue else keys[:1]
        self._pending_keys = [F.normalize(k, dim=1) for k in enqueue]
        return {"loss": loss, "embedding": queries[0].detach()}

    @torch.no_grad()
    def on_after_optimizer_step(self, step: StepInfo) -> None:
        self.key_encoder.update(nn.Sequential(self.backbone, self.projector), self.key_momentum(step))
        if self._pending_keys is not None:
            # clip by clip, each the keys of the global batch (MoCo's concat_all_gather), in SlowFast's order
            self.enqueue(torch.cat([gather_no_grad(k) for k in self._pending_keys]))
            self._pending_keys = None

    @torch.no_grad()
    def enqueue(self, keys: torch.Tensor) -> None:
        """Replace the oldest ``len(keys)`` queue entries with ``keys`` ``(N, D)`` (a ring buffer)."""
        size, n = self.queue.shape[0], keys.shape[0]
        index = (self.queue_ptr + torch.arange(n, device=keys.device)) % size
        self.queue[index[-size:]] = keys[-size:].to(self.queue.dtype)
        self.queue_ptr.copy_((self.queue_ptr + n) % size)


@dataclass
class MoCoV3Config(MethodConfig):
    name: str = "moco_v3"
    num_clips: int = 2  # rho
    proj_hidden_dim: int = 512  # MoCo v3: 4096
    proj_dim: int = 128  # MoCo v3: 256
    pred_hidden_dim: int = 512  # MoCo v3: 4096
    temperature: float = 0.2  # MoCo v3: t = 0.2 for ViT (1.0 for ResNet-50)
    momentum_base: float = 0.99  # MoCo v3: m from 0.99 (ViT) / 0.996 (ResNet) cosine-increased to 1
    momentum_final: float = 1.0
    freeze_patch_embed: bool = False  # MoCo v3 sec. 5: random, frozen patch projection stabilises ViT training


class MoCoV3(Method):
    Config = MoCoV3Config

    def __init__(self, cfg):
        super().__init__(cfg)
        h = self.hparams
        # MoCo v3: 3-layer projector with BN on every layer (affine-free on the output), 2-layer predictor.
        self.projector = ProjectionHead(self.backbone.num_features, h.proj_hidden_dim, h.proj_dim, num_layers=3,
                                        last_batch_norm=True)
        self.predictor = PredictionHead(h.proj_dim, h.pred_hidden_dim)
        if h.freeze_patch_embed:
            frozen = [p for name, p in self.backbone.named_parameters() if "patch_embed" in name]
            if not frozen:
                raise UserError(f"method.freeze_patch_embed: backbone '{cfg.backbone.name}' has no patch embedding")
            for p in frozen:
                p.requires_grad_(False)
        self.momentum_encoder = EMATeacher(nn.Sequential(self.backbone, self.projector))

    def views(self):
        return rho_clip_views(self.cfg.data, self.hparams.num_clips)

    def training_step(self, batch: dict[str, Any], step: StepInfo) -> dict[str, torch.Tensor]:
        views = batch["video"]  # rho x (B, C, T, H, W)
        x = concat_views(views)
        q = self.predictor(self.projector(self.backbone(x))).chunk(len(views))
        with torch.no_grad():
            k = self.momentum_encoder(x).chunk(len(views))
        pairs = [(i, j) for i in range(len(views)) for j in range(i + 1, len(views))]
        t = self.hparams.temperature
        loss = sum(moco_v3_loss(q[i], q[j], k[i], k[j], t) for i, j in pairs) / len(pairs)
        return {"loss": loss, "embedding": k[0]}

    def on_after_optimizer_step(self, step: StepInfo) -> None:
        h = self.hparams
        momentum = cosine_schedule(step.step, step.total_steps, h.momentum_base, h.momentum_final)
        self.momentum_encoder.update(nn.Sequential(self.backbone, self.projector), momentum)
