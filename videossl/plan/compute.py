"""The compute side of a plan: the model (parameters, the views' clip shapes), FLOPs per clip and per optimizer step,
steps, total PFLOPs and GPU-hours at a stated MFU on a named GPU.

FLOPs come from ``bench/flops.py``, the counter ``videossl bench train`` uses, on the ``meta`` device (no memory, no
compute). A method that needs real values (``.item()``, ``nonzero``) is counted on CPU at batches 2 and 3 and
extrapolated linearly; CPU attention kernels have no FLOP formula, so a transformer's attention is then missing
from the count (the result says so).

GPU-hours = total FLOPs / (peak bf16 dense FLOP/s of the GPU x MFU) / 3600, the MFU convention of
``docs/benchmarks.md`` (model FLOPs of forward + backward against the bf16 dense peak, whatever the precision).
The default MFU is the one we measured on an H100 for the backbone family and the recipe's GPU-path options
(``MEASURED_MFU``); ``--mfu`` replaces it.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

import torch

from videossl.bench.flops import build_method, forward_flops, training_step_flops
from videossl.bench.peers import method_batch


@dataclass(frozen=True)
class Gpu:
    """A GPU's bf16 dense tensor peak (TFLOP/s) and memory (GiB), from its NVIDIA datasheet."""

    name: str
    peak_tflops: float
    memory_gib: float


GPUS: dict[str, Gpu] = {
    "H100": Gpu("NVIDIA H100 SXM 80GB", 989.0, 80.0),
    "H100-PCIe": Gpu("NVIDIA H100 PCIe 80GB", 756.0, 80.0),
    "H200": Gpu("NVIDIA H200 SXM 141GB", 989.0, 141.0),
    "A100": Gpu("NVIDIA A100 SXM 80GB", 312.0, 80.0),
    "A100-40GB": Gpu("NVIDIA A100 40GB", 312.0, 40.0),
    "L40S": Gpu("NVIDIA L40S 48GB", 362.0, 48.0),
    "V100": Gpu("NVIDIA V100 32GB (fp16 tensor peak; no bf16)", 125.0, 32.0),
}
DEFAULT_GPU = "H100"

_BENCH = "docs/benchmarks.md section 5 (H100 SXM, measured)"
# (family, precision class, GPU-path options) -> (MFU, what was measured)
MEASURED_MFU: dict[tuple[str, str, str], tuple[float, str]] = {
    ("cnn", "bf16", "eager"): (0.067, f"{_BENCH}: SimCLR step, R(2+1)D-18, bf16, eager NCTHW, batch 16"),
    ("cnn", "bf16", "channels_last"): (0.103, f"{_BENCH}: SimCLR step, R(2+1)D-18, bf16, channels_last_3d, batch 16"),
    ("cnn", "bf16", "compile+channels_last"): (
        0.150, f"{_BENCH}: SimCLR step, R(2+1)D-18, bf16, channels_last_3d + torch.compile, batch 16"),
    ("transformer", "bf16", "eager"): (0.159, f"{_BENCH}: SVT step, TimeSformer-B/16, bf16, eager, batch 32"),
    ("transformer", "fp32", "eager"): (0.033, f"{_BENCH}: SVT step, TimeSformer-B/16, fp32 (TF32 off), batch 8"),
}


def default_mfu(family: str, precision: str, train_cfg: Any) -> tuple[float, str]:
    """The measured MFU closest to this recipe, and a sentence saying what it is (and where it is not an exact
    match)."""
    precision_class = "fp32" if precision.startswith("32") else "bf16"
    options = ("compile+channels_last" if train_cfg.compile and train_cfg.channels_last
               else "channels_last" if train_cfg.channels_last else "eager")
    key = (family, precision_class, options)
    if key in MEASURED_MFU:
        return MEASURED_MFU[key]
    for fallback in ((family, precision_class, "eager"), (family, "bf16", "eager")):
        if fallback in MEASURED_MFU:
            value, source = MEASURED_MFU[fallback]
            return value, (f"not measured for {family} / {precision_class} / {options}; nearest measured: {source}")
    raise KeyError(key)


def backbone_family(backbone: torch.nn.Module) -> str:
    """``transformer`` when the backbone has attention layers, else ``cnn`` (the MFU table's two families)."""
    return "transformer" if any("attention" in type(m).__name__.lower() for m in backbone.modules()) else "cnn"


def view_shapes(batch: dict[str, Any]) -> list[dict[str, Any]]:
    """``[{"modality", "shape"}]``: one entry per view of a one-sample batch (the shape without the batch dim)."""
    views = []
    for modality in ("video", "audio"):
        tensors = batch.get(modality) or []
        for tensor in tensors if isinstance(tensors, (list, tuple)) else [tensors]:
            views.append({"modality": modality, "shape": list(tensor.shape[1:])})
    return views


def per_clip_flops(backbone: torch.nn.Module, views: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Forward FLOPs of the backbone on one clip of each distinct view shape (meta device); ``None`` where the
    backbone does not take that view (e.g. an audio view of a video backbone)."""
    rows, seen = [], set()
    for view in views:
        key = (view["modality"], tuple(view["shape"]))
        if key in seen:
            continue
        seen.add(key)
        try:
            flops = forward_flops(backbone, torch.empty(1, *view["shape"], device="meta"))
        except Exception:  # noqa: BLE001 - the view belongs to another tower
            flops = None
        rows.append({"modality": view["modality"], "shape": view["shape"],
                     "count": sum(1 for v in views if (v["modality"], tuple(v["shape"])) == key), "flops": flops})
    return rows


def model_summary(cfg: Any) -> dict[str, Any]:
    """Parameters (all, trained, the encoder's), the views' clip shapes and per-clip forward FLOPs, built on
    ``meta`` (or CPU where a backbone cannot build there: ``built_on`` says which)."""
    try:
        method, built_on = build_method(cfg, "meta"), "meta"
    except Exception:  # noqa: BLE001 - a backbone that computes real values while it builds
        method, built_on = build_method(cfg, "cpu"), "cpu"
    views = view_shapes(method_batch(cfg, method, 1, built_on, int(cfg.train.seed)))
    backbone = method.backbone
    clips = per_clip_flops(backbone, views) if built_on == "meta" else []
    return {"built_on": built_on, "params": sum(p.numel() for p in method.parameters()),
            "trained_params": sum(p.numel() for p in method.parameters() if p.requires_grad),
            "encoder_params": sum(p.numel() for p in backbone.parameters()), "family": backbone_family(backbone),
            "views": views, "per_clip": clips}


def step_flops(cfg: Any, batch_size: int) -> dict[str, Any]:
    """FLOPs of one micro-batch step per process (``bench/flops.py``), and how they were counted."""
    try:
        flops = training_step_flops(cfg, batch_size, int(cfg.train.seed), "meta")
        return {**flops, "how": "counted on the meta device at the recipe's batch (as `videossl bench train`)"}
    except Exception as error:  # noqa: BLE001 - .item() / nonzero need real values
        # batches 2 and 3: a BatchNorm in training mode refuses a batch of 1 (e.g. L3's fusion head)
        low, high = (batch_size, batch_size) if batch_size <= 3 else (2, 3)
        a = training_step_flops(cfg, low, int(cfg.train.seed), "cpu")
        b = training_step_flops(cfg, high, int(cfg.train.seed), "cpu") if high != low else a
        slope = {k: (b[k] - a[k]) / max(1, high - low) for k in ("forward", "backward", "total")}
        flops = {k: a[k] + (batch_size - low) * slope[k] for k in ("forward", "backward", "total")}
        reason = (str(error).strip().splitlines() or [type(error).__name__])[0][:100]
        where = f"batch {batch_size}" if low == high else f"batches {low} and {high}, extrapolated linearly"
        return {**flops, "how": f"counted on CPU at {where} (not on meta: {reason}); CPU attention kernels are not "
                                "counted"}


def schedule(cfg: Any, videos: int | None) -> dict[str, Any]:
    """Steps per epoch and in total as the trainer computes them (drop-last batches over all processes, then
    gradient accumulation); ``None`` when the number of videos is unknown."""
    tc = cfg.train
    world = int(tc.devices) * int(tc.num_nodes)
    accumulate = max(1, int(cfg.optim.accumulate))
    global_batch = int(tc.batch_size) * world
    out = {"world_size": world, "accumulate": accumulate, "global_batch": global_batch * accumulate,
           "epochs": int(tc.epochs), "max_steps": int(tc.max_steps), "steps_per_epoch": None, "total_steps": None}
    if videos is not None:
        per_epoch = (videos // global_batch) // accumulate
        total = per_epoch * int(tc.epochs)
        if tc.max_steps > 0:
            total = min(total, int(tc.max_steps))
        out.update(steps_per_epoch=per_epoch, total_steps=total)
    return out


def cost(step_total_flops: float, sched: dict[str, Any], gpu: Gpu, mfu: float) -> dict[str, Any]:
    """FLOPs per optimizer step (all processes), total PFLOPs, GPU-hours and wall-clock hours at ``mfu``."""
    per_optimizer_step = step_total_flops * sched["accumulate"] * sched["world_size"]
    rate = gpu.peak_tflops * 1e12 * mfu  # FLOP/s one GPU sustains
    out = {"flops_per_optimizer_step": per_optimizer_step, "total_pflops": None, "gpu_hours": None,
           "wall_hours": None, "gpu_hours_per_100k_videos_epoch": None}
    if sched["total_steps"] is not None:
        total = per_optimizer_step * sched["total_steps"]
        out.update(total_pflops=total / 1e15, gpu_hours=total / rate / 3600,
                   wall_hours=total / rate / 3600 / sched["world_size"])
    # what each 100k videos of one epoch cost, usable when the video count is unknown
    out["gpu_hours_per_100k_videos_epoch"] = (1e5 / (sched["global_batch"])) * per_optimizer_step / rate / 3600
    return out


def human(value: float | None, unit: str = "") -> str:
    """``1.23 G`` style numbers for the report (``-`` for None)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    for factor, prefix in ((1e15, "P"), (1e12, "T"), (1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= factor:
            return f"{value / factor:.3g} {prefix}{unit}"
    return f"{value:.3g} {unit}".rstrip()
