"""Attentive probe (V-JEPA, Bardes et al. 2024, "Revisiting Feature Prediction for Learning Visual Representations
from Video", sec. 4): a learned query cross-attends to the FROZEN patch tokens of a video, then a linear classifier.

Read from facebookresearch/jepa: ``evals/video_classification_frozen/eval.py`` (training loop, ``init_opt``,
``run_one_epoch``), ``evals/video_classification_frozen/utils.py`` (``ClipAggregation``, ``make_transforms``),
``src/models/attentive_pooler.py`` (``AttentiveClassifier``, here ``videossl.nn.attentive_pooler``),
``src/datasets/video_dataset.py`` (clips per partition of the video) and ``configs/evals/vitl16_*.yaml``.

- Tokens: ``encoder.forward_tokens`` of each clip, ``(B, N, D)`` for ViTs; a 3D CNN's last feature map
  ``(B, D, t, h, w)`` becomes ``(B, t*h*w, D)`` tokens. The encoder runs in eval mode without gradients.
- Views: ``test.num_clips`` clips per video (the reference's ``num_segments``: 8 on K400, 2 on SSv2), clip ``i``
  inside the ``i``-th equal part of the video. With ``attentive.attend_across_clips`` (the reference's
  ``attend_across_segments: true``) the tokens of all clips of a video are concatenated, ``(B, S*N, D)``, and the
  probe sees them at once, in training too; otherwise every clip is classified alone and the scores averaged.
- Training: one random clip per part, each with its own random resized crop (no flip by default), AdamW on the
  probe only, lr warm-up / cosine schedule and a cosine weight-decay schedule per step, gradient norm clipped.
- ``attentive.cache_tokens``: fixed training views (evenly spaced clips, centre crop) encoded once, for small data
  and benchmarks (not the reference protocol, which augments every epoch).
- Test: the ``test.num_clips`` clips evenly spaced (the reference draws a random window in each part at test time
  too), each through ``test.num_crops`` spatial crops; per crop one prediction from the tokens of all clips, softmax
  averaged over the crops (and over the clips when they are classified alone).

Not reproduced (named so nobody assumes them): the reference's RandAugment (``rand-m7-n4-mstd0.5-inc1``) and random
erasing (``reprob 0.25``) in training, and its float16 autocast with a GradScaler (ours: bf16 autocast on CUDA).
Writes ``<out_dir>/attentive.json``.
"""
from __future__ import annotations

import contextlib
import math
from typing import Any

import torch
from torch import nn
from torch.utils.data import DataLoader

from videossl.data.bad_files import bad_files
from videossl.data.build import dataset_from_index
from videossl.data.video_dataset import collate_readable
from videossl.errors import UserError
from videossl.nn.attentive_pooler import AttentiveClassifier

from .features import load_eval_encoder, read_split, resolve_device
from .finetune import EpochShuffleSampler
from .frozen import finish_result, report_skipped_files, split_ids
from .label_subset import apply_label_fraction
from .metrics import per_class_top1, topk_accuracy
from .report import prepare_out_dir
from .views import multi_view_spec, partition_clips_spec


def frozen_tokens(encoder: nn.Module, clips: torch.Tensor) -> torch.Tensor:
    """``(B, C, T, H, W)`` clips -> ``(B, N, D)`` tokens of the frozen encoder (``forward_tokens``): ViT patch tokens
    as they are; a CNN feature map ``(B, D, t, h, w)`` (or ``(B, D, h, w)``) flattened to ``(B, t*h*w, D)``."""
    tokens = encoder.forward_tokens(clips)
    if tokens.ndim == 3:
        return tokens
    if tokens.ndim in (4, 5):
        return tokens.flatten(2).transpose(1, 2)
    raise UserError(f"attentive probe: the encoder's forward_tokens gave shape {tuple(tokens.shape)}; expected "
                    "(B, N, D) tokens or a (B, D, t, h, w) feature map")


def probe_num_heads(encoder: nn.Module, dim: int, requested: int = 0) -> int:
    """Heads of the probe's cross-attention: ``requested`` when > 0; else the encoder's own (V-JEPA's eval.py:
    ``num_heads=encoder.num_heads``; ``num_heads`` or a transformers ``config.num_attention_heads``); else
    ``dim // 64`` lowered to a divisor of ``dim`` (3D CNN feature maps: 512 channels -> 8 heads)."""
    if requested > 0:
        if dim % requested:
            raise UserError(f"attentive.num_heads: {requested} does not divide the token width {dim}")
        return requested
    config = getattr(getattr(encoder, "model", None), "config", None)
    for heads in (getattr(encoder, "num_heads", None), getattr(config, "num_attention_heads", None)):
        if isinstance(heads, int) and heads > 0 and dim % heads == 0:
            return heads
    heads = max(1, dim // 64)
    while dim % heads:
        heads -= 1
    return heads


def probe_inputs(tokens: torch.Tensor, num_clips: int, across: bool) -> torch.Tensor:
    """``(B * S, N, D)`` tokens of S clips per video (video-major) -> ``(B, S * N, D)`` when ``across`` (all clips of a
    video attended together), else unchanged (each clip alone)."""
    if not across:
        return tokens
    bs, n, d = tokens.shape
    return tokens.reshape(bs // num_clips, num_clips * n, d)


def cosine_value(step: int, total: int, warmup: int, start: float, peak: float, final: float) -> float:
    """facebookresearch/jepa ``src/utils/schedulers.py`` ``WarmupCosineSchedule`` at optimizer step ``step`` (1-based,
    the reference steps the schedule before each iteration): linear ``start -> peak`` over ``warmup`` steps, then
    cosine ``peak -> final`` over the rest, never below ``final``. With ``warmup = 0`` and ``start = peak`` it is also
    their ``CosineWDSchedule`` (weight decay ``peak -> final`` over ``total`` steps)."""
    if step < warmup:
        return start + step / max(1, warmup) * (peak - start)
    progress = (step - warmup) / max(1, total - warmup)
    return max(final, final + (peak - final) * 0.5 * (1.0 + math.cos(math.pi * progress)))


def build_probe_optimizer(classifier: nn.Module, weight_decay: float) -> torch.optim.AdamW:
    """AdamW with two groups as ``init_opt``: weights decayed, biases and 1-D parameters (norms, the query's
    ``(1, 1, D)`` is 3-D and decayed as there) not; the schedules set lr and weight decay every step."""
    decay = [p for n, p in classifier.named_parameters() if "bias" not in n and p.ndim != 1]
    no_decay = [p for n, p in classifier.named_parameters() if "bias" in n or p.ndim == 1]
    return torch.optim.AdamW([{"params": decay, "weight_decay": weight_decay},
                              {"params": no_decay, "weight_decay": 0.0, "exclude_decay": True}])


def autocast_for(device: torch.device) -> Any:
    return torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext()


class AugmentedTokens:
    """Training batches of the reference protocol: every epoch new random clips (one per equal part of the video) and
    crops, through the frozen encoder. Iterating yields ``(tokens (B * S, N, D) float32 on device, labels (B,))``."""

    def __init__(self, cfg: Any, encoder: nn.Module, index: Any, device: torch.device):
        data, settings = cfg.data, cfg.attentive
        spec = partition_clips_spec(int(cfg.test.num_clips), int(data.num_frames), int(data.frame_stride),
                                    int(data.crop_size), float(settings.strength), hflip=bool(settings.hflip),
                                    mean=data.get("mean"), std=data.get("std"))
        self.dataset = dataset_from_index(data, index, spec, seed=int(cfg.seed))  # decoded at data.short_side (0: file)
        self.sampler = EpochShuffleSampler(len(self.dataset), seed=int(cfg.seed))
        self.loader = DataLoader(self.dataset, batch_size=min(int(settings.batch_size), len(self.dataset)),
                                 sampler=self.sampler, num_workers=int(data.num_workers))
        self.encoder, self.device = encoder, device

    def __len__(self) -> int:
        return len(self.loader)

    def epoch(self, epoch: int):
        self.sampler.set_epoch(epoch)
        for batch in self.loader:
            clips = torch.stack(batch["video"], dim=1).flatten(0, 1)  # (B * S, C, T, H, W), video-major
            with torch.no_grad(), autocast_for(self.device):
                tokens = frozen_tokens(self.encoder, clips.to(self.device, non_blocking=True)).float()
            yield tokens, batch["label"].long().to(self.device)


class CachedTokens:
    """``attentive.cache_tokens``: the tokens of fixed views (``test.num_clips`` evenly spaced clips, centre crop, no
    augmentation) extracted once and reshuffled every epoch: for small data and benchmarks, not the reference."""

    def __init__(self, cfg: Any, encoder: nn.Module, index: Any, device: torch.device):
        data, num_clips = cfg.data, int(cfg.test.num_clips)
        spec = multi_view_spec(num_clips, 1, int(data.num_frames), int(data.frame_stride), int(data.crop_size),
                               mean=data.get("mean"), std=data.get("std"))
        self.dataset = dataset_from_index(data, index, spec, seed=int(cfg.seed),
                                          short_side=int(data.short_side) or int(data.crop_size))
        tokens, labels = [], []
        for batch in DataLoader(self.dataset, batch_size=int(data.batch_size), num_workers=int(data.num_workers)):
            clips = torch.stack(batch["video"], dim=1).flatten(0, 1)
            with torch.no_grad(), autocast_for(device):
                found = frozen_tokens(encoder, clips.to(device, non_blocking=True)).float()
            tokens.append(found.view(-1, num_clips, *found.shape[1:]).to(device))
            labels.append(batch["label"].long().to(device))
        self.tokens, self.labels = torch.cat(tokens), torch.cat(labels)  # (V, S, N, D), (V,)
        self.batch_size, self.seed = min(int(cfg.attentive.batch_size), len(self.labels)), int(cfg.seed)

    def __len__(self) -> int:
        return math.ceil(len(self.labels) / self.batch_size)

    def epoch(self, epoch: int):
        order = torch.randperm(len(self.labels), generator=torch.Generator().manual_seed(self.seed * 1000 + epoch))
        for rows in order.to(self.labels.device).split(self.batch_size):
            yield self.tokens[rows].flatten(0, 1), self.labels[rows]


def train_probe(cfg: Any, encoder: nn.Module, index: Any, device: torch.device) -> tuple[nn.Module, list[float], list]:
    """Train an ``AttentiveClassifier`` on the frozen tokens of ``index``'s videos; returns it (eval mode), the mean
    training loss of every epoch and the files the training set skipped."""
    settings = cfg.attentive
    num_clips, across = int(cfg.test.num_clips), bool(settings.attend_across_clips)
    source = (CachedTokens if bool(settings.cache_tokens) else AugmentedTokens)(cfg, encoder, index, device)
    scale = min(int(settings.batch_size), len(index.entries)) / 256  # lr for the reference's global batch of 256
    epochs, total = int(settings.epochs), max(int(settings.epochs) * len(source), 1)
    warmup = int(float(settings.warmup_epochs) * len(source))
    classifier, optimizer, losses, step = None, None, [], 0
    for epoch in range(epochs):
        running, count = 0.0, 0
        for tokens, labels in source.epoch(epoch):
            if classifier is None:  # the token width is known from the first batch
                dim = tokens.shape[-1]
                torch.manual_seed(int(cfg.seed))
                classifier = AttentiveClassifier(dim, len(index.class_names), probe_num_heads(
                    encoder, dim, int(settings.num_heads)), mlp_ratio=float(settings.mlp_ratio)).to(device)
                optimizer = build_probe_optimizer(classifier, float(settings.weight_decay))
            step += 1
            set_lr_and_weight_decay(optimizer, settings, step, total, warmup, scale)
            targets = labels if across else labels.repeat_interleave(num_clips)
            with autocast_for(device):
                logits = classifier(probe_inputs(tokens, num_clips, across))
            loss = nn.functional.cross_entropy(logits.float(), targets)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if float(settings.grad_clip) > 0:
                nn.utils.clip_grad_norm_(classifier.parameters(), float(settings.grad_clip))
            optimizer.step()
            running, count = running + float(loss.detach()) * labels.shape[0], count + labels.shape[0]
        losses.append(running / max(count, 1))
        if cfg.progress:
            print(f"attentive probe epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}", flush=True)
    return classifier.eval(), losses, list(bad_files(source.dataset))


def set_lr_and_weight_decay(optimizer: torch.optim.Optimizer, settings: Any, step: int, total: int, warmup: int,
                            scale: float) -> None:
    """The reference's per-step schedules: lr (x ``scale``, the batch / 256 rule) and weight decay (decayed groups)."""
    lr = scale * cosine_value(step, total, warmup, float(settings.start_lr), float(settings.lr),
                              float(settings.final_lr))
    wd = cosine_value(step, total, 0, float(settings.weight_decay), float(settings.weight_decay),
                      float(settings.final_weight_decay))
    for group in optimizer.param_groups:
        group["lr"] = lr
        if not group.get("exclude_decay"):
            group["weight_decay"] = wd


@torch.no_grad()
def test_probe(cfg: Any, encoder: nn.Module, classifier: nn.Module, index: Any,
               device: torch.device) -> tuple[torch.Tensor, torch.Tensor, tuple[str, ...], list]:
    """Multi-view test: ``(M, classes)`` softmax scores averaged per video, ``(M,)`` labels, the paths of the videos
    left out (unreadable) and the skipped-file records. Views ``clip{s}_crop{k}`` come clip-major (view ``s * K + k``);
    with ``attend_across_clips`` crop ``k``'s prediction reads the tokens of every clip through crop ``k``."""
    data, num_clips, num_crops = cfg.data, int(cfg.test.num_clips), int(cfg.test.num_crops)
    across = bool(cfg.attentive.attend_across_clips)
    spec = multi_view_spec(num_clips, num_crops, int(data.num_frames), int(data.frame_stride), int(data.crop_size),
                           mean=data.get("mean"), std=data.get("std"))
    dataset = dataset_from_index(data, index, spec, seed=int(cfg.seed), replace_unreadable=False,
                                 short_side=int(data.short_side) or int(data.crop_size))  # test crops: decode small
    loader = DataLoader(dataset, batch_size=int(data.batch_size), shuffle=False, num_workers=int(data.num_workers),
                        collate_fn=collate_readable)  # unreadable videos are left out of the batch
    scores: dict[int, torch.Tensor] = {}
    for batch in loader:
        if batch is None:  # every video of this batch was unreadable
            continue
        views = torch.stack(batch["video"], dim=1)  # (B, S*K, C, T, H, W)
        b = views.shape[0]
        with autocast_for(device):
            tokens = frozen_tokens(encoder, views.flatten(0, 1).to(device, non_blocking=True))  # (B*S*K, N, D)
            tokens = tokens.view(b, num_clips, num_crops, *tokens.shape[1:])
            if across:  # (B, K, S*N, D): per crop, the tokens of all clips
                inputs = tokens.transpose(1, 2).reshape(b * num_crops, -1, tokens.shape[-1])
            else:
                inputs = tokens.flatten(0, 2)
            logits = classifier(inputs.float()).float().view(b, -1, len(index.class_names))
        probs = logits.softmax(dim=-1).mean(dim=1).cpu()
        for row, loaded in enumerate(torch.as_tensor(batch["index"]).tolist()):
            scores[int(loaded)] = probs[row]
    kept = sorted(scores)
    skipped = tuple(index.entries[i].path for i in range(len(index.entries)) if i not in scores)
    labels = torch.tensor([index.entries[i].label for i in kept], dtype=torch.long)
    return torch.stack([scores[i] for i in kept]), labels, skipped, list(bad_files(dataset))


def attentive_one_split(cfg: Any, encoder: nn.Module, split_id: int, device: torch.device) -> dict:
    """Train the probe on one split's training videos (or their ``attentive.label_fraction``) and test it."""
    train_index, test_index = read_split(cfg.data, "train", split_id), read_split(cfg.data, "test", split_id)
    if train_index.class_names != test_index.class_names:
        raise UserError(f"data: train and test of split {split_id} list different classes "
                        f"({len(train_index.class_names)} vs {len(test_index.class_names)})")
    train_index, subset = apply_label_fraction(train_index, cfg.attentive, int(cfg.seed), cfg.out_dir, split_id)
    classifier, losses, train_bad = train_probe(cfg, encoder, train_index, device)
    scores, labels, skipped, test_bad = test_probe(cfg, encoder, classifier, test_index, device)
    return {"split": split_id, "num_train": len(train_index.entries), "num_test": int(labels.numel()),
            "num_classes": len(train_index.class_names),
            "probe_parameters": sum(p.numel() for p in classifier.parameters()),
            "train_loss": losses, "skipped_unreadable": {"test": list(skipped)},
            **topk_accuracy(scores, labels, ks=(1, 5)),
            "per_class_top1": per_class_top1(scores, labels, test_index.class_names),
            **({"label_subset": subset} if subset else {}), "_bad_files": [*train_bad, *test_bad]}


def run_attentive_probe(cfg: Any) -> dict:
    """The attentive probe on each requested split; returns ``{"top1", "top5", "splits": [...]}`` (+ ``mean`` / ``std``
    for ``split=all``) and writes ``attentive.json`` (and ``bad_files.csv`` when a file was skipped)."""
    prepare_out_dir(cfg.out_dir)  # a read-only out_dir fails now, not after the training
    device = resolve_device(str(cfg.device))
    encoder, _ = load_eval_encoder(str(cfg.encoder), seed=int(cfg.seed))
    encoder = encoder.to(device).eval().requires_grad_(False)
    per_split = [attentive_one_split(cfg, encoder, split_id, device) for split_id in split_ids(cfg.data)]
    skipped_files = [row for split in per_split for row in split.pop("_bad_files", [])]
    result = finish_result("attentive", cfg, per_split, ["top1", "top5"])
    report_skipped_files(skipped_files, cfg.out_dir)
    return result
