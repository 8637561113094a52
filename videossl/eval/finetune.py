"""Fine-tuning: the whole network plus a linear classifier, trained end to end with labels.

Train: one clip per video at a random time, random resized crop + horizontal flip (``finetune_spec``);
SGD with momentum, linear warmup then cosine decay, dropout before the classifier (settings and sources in
``FinetuneConfig``). Test: the same multi-view test as the linear probe (N clips x 3 crops, softmax
averaged per video). Devices and precision come from Lightning Fabric (32-bit on CPU, bf16-mixed on GPU).
Writes ``<out_dir>/finetune.json`` and prints a table.
"""
from __future__ import annotations

import math
from typing import Any, Iterator

import torch
from torch import nn
from torch.utils.data import DataLoader

from ..data.bad_files import bad_files
from ..data.build import dataset_from_index
from ..data.sampling import RandomClipSampler, ViewSpec
from ..errors import UserError
from ..nn.schedules import step_schedule
from ..transforms.video import VIDEO_MEAN, VIDEO_STD, build_video_transform
from .features import extract_features, load_eval_encoder, read_split, resolve_device
from .frozen import finish_result, report_skipped_files, split_ids
from .label_subset import apply_label_fraction
from .metrics import average_view_scores, topk_accuracy
from .multi_view import multi_view_test_scores
from .report import prepare_out_dir
from .views import finetune_spec, multi_view_spec, segment_test_spec
from .vit_finetune import finetune_batch, set_drop_path, with_layer_decay


class VideoClassifier(nn.Module):
    """``(B, C, T, H, W)`` clips -> ``(B, num_classes)`` logits: backbone, dropout, linear."""

    def __init__(self, backbone: nn.Module, num_classes: int, dropout: float = 0.5):
        super().__init__()
        self.backbone = backbone
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(backbone.num_features, num_classes)
        nn.init.normal_(self.fc.weight, std=0.01)
        nn.init.zeros_(self.fc.bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.backbone.forward_features(x)))


class EpochShuffleSampler(torch.utils.data.Sampler):
    """Yields ``(index, epoch)`` keys in a seeded random order per epoch.

    ``VideoDataset`` seeds a sample's augmentation with ``(seed, epoch, index)``, so each epoch sees new
    random clips and crops, and a run is reproducible. Call ``set_epoch`` before each epoch.
    """

    def __init__(self, size: int, seed: int = 0):
        self.size, self.seed, self.epoch = size, seed, 0

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        order = torch.randperm(self.size, generator=torch.Generator().manual_seed(self.seed * 1000 + self.epoch))
        return iter([(int(i), self.epoch) for i in order])

    def __len__(self) -> int:
        return self.size


def warmup_cosine(step: int, warmup_steps: int, total_steps: int) -> float:
    """Learning-rate factor: linear warmup from ~0 to 1 over ``warmup_steps``, then cosine to 0
    (Goyal et al. 2017; Loshchilov & Hutter, SGDR, 2017)."""
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    progress = (step - warmup_steps) / max(total_steps - warmup_steps, 1)
    return 0.5 * (1.0 + math.cos(math.pi * min(progress, 1.0)))


def finetune_lr_factor(step: int, warmup_steps: int, total_steps: int, steps_per_epoch: int,
                       settings: Any) -> float:
    """Learning-rate factor at optimizer step ``step``: the linear warmup, then ``settings.lr_schedule``:
    ``cosine`` (``warmup_cosine``), ``constant`` (1 after the warmup, as VCOP's ft_classify.py) or ``step``
    (x ``lr_gamma`` at each epoch in ``lr_milestones``, as PRP's StepLR)."""
    name = str(getattr(settings, "lr_schedule", "cosine"))
    if name == "cosine":
        return warmup_cosine(step, warmup_steps, total_steps)
    if step < warmup_steps:
        return (step + 1) / warmup_steps
    milestones = [] if name == "constant" else [math.ceil(float(m) * steps_per_epoch) for m in settings.lr_milestones]
    return step_schedule(step, 1.0, milestones, float(settings.lr_gamma))  # the pretraining engine's step decay


def build_optimizer(model: VideoClassifier, settings: Any, batch_size: int) -> torch.optim.Optimizer:
    """SGD (momentum), AdamW or Adam (coupled L2); lr scaled by ``batch_size / 256``; the backbone's lr times
    ``backbone_lr_scale``; no weight decay on biases and norm parameters (common practice since
    Goyal et al. 2017) unless ``decay_bias_and_norm``."""
    lr = float(settings.lr) * batch_size / 256
    decay_all = bool(getattr(settings, "decay_bias_and_norm", False))
    groups: dict[tuple[bool, bool], list[nn.Parameter]] = {}
    for name, param in model.named_parameters():
        groups.setdefault((name.startswith("backbone."), param.ndim <= 1 and not decay_all), []).append(param)
    param_groups = [
        {"params": params, "lr": lr * (float(settings.backbone_lr_scale) if is_backbone else 1.0),
         "weight_decay": 0.0 if no_decay else float(settings.weight_decay)}
        for (is_backbone, no_decay), params in groups.items()
    ]
    if settings.optimizer == "sgd":
        return torch.optim.SGD(param_groups, lr=lr, momentum=float(settings.momentum),
                               nesterov=bool(getattr(settings, "nesterov", False)))
    if settings.optimizer == "adam":  # weight_decay x w joins the gradient before the moments (DPC's optim.Adam)
        return torch.optim.Adam(param_groups, lr=lr)
    return torch.optim.AdamW(param_groups, lr=lr)


def slowfast_train_spec(data: Any, settings: Any, norm: dict) -> Any:
    """One random clip with SlowFast's fine-tuning augmentation (finetune_ucf_Slow_R50_syn*.yaml): short side
    uniform in ``finetune.jitter_scales`` then a random ``crop_size`` square (else the random resized crop of
    ``strength``), flip, ``finetune.color_jitter`` on every clip (p = 1) and grayscale ``finetune.gray_p``."""
    scales, jitter = [int(s) for s in settings.jitter_scales], [float(j) for j in settings.color_jitter]
    if scales and (len(scales) != 2 or not 0 < scales[0] <= scales[1]):
        raise UserError(f"finetune.jitter_scales: [min, max] short side with 0 < min <= max, got {scales}")
    if jitter and len(jitter) != 4:
        raise UserError(f"finetune.color_jitter: [brightness, contrast, saturation, hue] or [], got {jitter}")
    crop_size, strength = int(data.crop_size), float(settings.strength)
    transform = build_video_transform(
        "ssl", crop_size, scale=(1.0 - 0.92 * strength, 1.0), short_side_range=tuple(scales) if scales else None,
        jitter=tuple(jitter) if jitter else (0.0, 0.0, 0.0, 0.0), jitter_p=1.0, gray_p=float(settings.gray_p),
        blur_p=0.0, mean=tuple(norm.get("mean") or VIDEO_MEAN), std=tuple(norm.get("std") or VIDEO_STD),
        flip=bool(getattr(settings, "hflip", True)))
    return ViewSpec(RandomClipSampler(int(data.num_frames), int(data.frame_stride), transform="clip"),
                    {"clip": transform})


def train_spec(data: Any, settings: Any, norm: dict) -> ViewSpec:
    """The training clip: SlowFast's jitter-scale / colour recipe when the eval recipe sets it, else a random
    resized crop of ``finetune.strength`` (optionally TSN segments, no flip)."""
    if list(getattr(settings, "jitter_scales", [])) or list(getattr(settings, "color_jitter", [])):
        return slowfast_train_spec(data, settings, norm)
    return finetune_spec(int(data.num_frames), int(data.frame_stride), int(data.crop_size), float(settings.strength),
                         **norm, hflip=bool(getattr(settings, "hflip", True)),
                         sampling=str(getattr(settings, "sampling", "clip")))


def train_epochs(fabric: Any, model: nn.Module, optimizer: torch.optim.Optimizer, loader: Any, sampler: Any,
                 num_classes: int, cfg: Any, split_id: int) -> list[float]:
    """``finetune.epochs`` epochs of cross-entropy (mixup / CutMix / label smoothing as set) under the warm-up +
    schedule of ``finetune_lr_factor``; returns the mean training loss of each epoch."""
    settings, epochs = cfg.finetune, int(cfg.finetune.epochs)
    total_steps = max(epochs * len(loader), 1)
    warmup_steps = min(int(settings.warmup_epochs) * len(loader), total_steps // 2)
    schedule = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda s: finetune_lr_factor(s, warmup_steps, total_steps, len(loader), settings))
    losses = []
    for epoch in range(epochs):
        sampler.set_epoch(epoch)
        model.train()
        total, count = 0.0, 0
        for batch in loader:
            clips, labels = batch["video"][0], batch["label"]  # (B, C, T, H, W), (B,)
            # mixup / CutMix: mixed clips and soft targets; else the labels, with finetune.label_smoothing
            clips, targets, smoothing = finetune_batch(clips, labels, num_classes, settings)
            loss = nn.functional.cross_entropy(model(clips), targets, label_smoothing=smoothing)
            optimizer.zero_grad(set_to_none=True)
            fabric.backward(loss)
            optimizer.step()
            schedule.step()
            total, count = total + float(loss.detach()) * labels.shape[0], count + labels.shape[0]
        losses.append(total / max(count, 1))
        if cfg.progress:
            print(f"finetune split {split_id} epoch {epoch + 1}/{epochs}: loss {losses[-1]:.4f}", flush=True)
    return losses


def score_test_views(cfg: Any, classifier: nn.Module, test_index: Any, split_id: int, device: torch.device,
                norm: dict) -> Any:
    """Class scores of every test view: ``features`` ``(M, V, classes)`` (SVT's multi-view inference: ``(M, G*V,
    classes)`` over views of several geometries), with the labels and the videos left out."""
    data, settings = cfg.data, cfg.finetune
    if list(getattr(cfg.test, "multi_view", None) or []):
        return multi_view_test_scores(cfg, classifier, test_index, split_id, device)
    test_crop = int(getattr(settings, "test_crop_size", 0)) or int(data.crop_size)
    if str(getattr(settings, "sampling", "clip")) == "segments":
        test_spec = segment_test_spec(int(cfg.test.num_clips), int(cfg.test.num_crops), int(data.num_frames),
                                      test_crop, **norm)
    else:
        test_spec = multi_view_spec(int(cfg.test.num_clips), int(cfg.test.num_crops), int(data.num_frames),
                                    int(data.frame_stride), test_crop, **norm)
    return extract_features(classifier, test_index, test_spec, data, seed=int(cfg.seed), device=device,
                            progress=bool(cfg.progress), desc=f"finetune test (split {split_id})", forward=classifier)


def finetune_one_split(cfg: Any, split_id: int) -> dict:
    """Fine-tune a fresh copy of the encoder on one split's training videos and test it multi-view."""
    data, settings = cfg.data, cfg.finetune
    device = resolve_device(str(cfg.device))
    on_gpu = device.type == "cuda"
    from lightning.fabric import Fabric  # lazy: lightning (+torchmetrics, transformers) costs ~3 s per import

    fabric = Fabric(accelerator="cuda" if on_gpu else "cpu", devices=1, precision="bf16-mixed" if on_gpu else "32-true")
    fabric.seed_everything(int(cfg.seed), verbose=False)

    train_index, test_index = read_split(data, "train", split_id), read_split(data, "test", split_id)
    train_index, subset = apply_label_fraction(train_index, settings, int(cfg.seed), cfg.out_dir, split_id)
    backbone, _ = load_eval_encoder(str(cfg.encoder), seed=int(cfg.seed))
    model = VideoClassifier(backbone, len(train_index.class_names), dropout=float(settings.dropout))
    set_drop_path(backbone, float(getattr(settings, "drop_path", 0.0)))  # stochastic depth (blocks with drop_path)
    batch_size = min(int(settings.batch_size), len(train_index.entries))
    optimizer = build_optimizer(model, settings, batch_size)
    optimizer = with_layer_decay(optimizer, model, float(getattr(settings, "layer_decay", 1.0)))
    model, optimizer = fabric.setup(model, optimizer)

    norm = {"mean": data.get("mean"), "std": data.get("std")}
    spec = train_spec(data, settings, norm)
    # training: an unreadable video is replaced by another (as in pretraining) and listed in bad_files.csv
    dataset = dataset_from_index(data, train_index, spec, seed=int(cfg.seed))
    sampler = EpochShuffleSampler(len(dataset), seed=int(cfg.seed))
    loader = DataLoader(dataset, batch_size=batch_size, sampler=sampler, num_workers=int(data.num_workers),
                        drop_last=len(dataset) > batch_size)  # no 1-sample batch for BatchNorm
    loader = fabric.setup_dataloaders(loader, use_distributed_sampler=False)

    losses = train_epochs(fabric, model, optimizer, loader, sampler, len(train_index.class_names), cfg, split_id)
    classifier = model.module if hasattr(model, "module") else model
    logits = score_test_views(cfg, classifier, test_index, split_id, device, norm)
    numbers = topk_accuracy(average_view_scores(logits.features), logits.labels, ks=(1, 5))
    train_bad = bad_files(dataset)  # training draws another video for an unreadable one (as pretraining); said here
    return {"split": split_id, "num_train": len(train_index.entries), "num_test": int(logits.labels.numel()),
            "num_classes": len(train_index.class_names), "train_loss": losses,
            "skipped_unreadable": {"test": list(logits.skipped)}, "replaced_in_training": [b.path for b in train_bad],
            **numbers, **({"label_subset": subset} if subset else {}),
            "_bad_files": [*train_bad, *logits.bad_files]}  # for bad_files.csv, not for finetune.json


def run_finetune(cfg: Any) -> dict:
    """Fine-tune on each requested split; returns ``{"top1", "top5", "splits": [...]}`` (+ ``mean``/``std``
    for ``split=all``) and writes ``finetune.json`` (and ``bad_files.csv`` when a file was skipped)."""
    prepare_out_dir(cfg.out_dir)  # a read-only out_dir fails now, not after the training
    per_split = [finetune_one_split(cfg, split_id) for split_id in split_ids(cfg.data)]
    skipped_files = [row for split in per_split for row in split.pop("_bad_files", [])]
    result = finish_result("finetune", cfg, per_split, ["top1", "top5"])
    report_skipped_files(skipped_files, cfg.out_dir)
    return result
