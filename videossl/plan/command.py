"""``videossl plan RECIPE [key=value ...]``: check and price a pretraining recipe before it runs.

    videossl plan RECIPE [key=value ...] [--probe 16] [--seed 0] [--gpu H100] [--mfu 0.067] [--videos N]
                  [--max-missing 5] [--max-unreadable 10] [--json]

It resolves the config as ``videossl pretrain`` would (range checks included, but not whether this machine has the
recipe's accelerator), then reports:

- data (``data_check.py``): videos the annotations list, found on disk and missing; a decode probe of a seeded
  sample with ``data.decoder`` (unreadable files named with the reason; codecs, resolutions, fps and duration
  min / median / max);
- model and compute (``compute.py``): parameters, the views' clip shapes, FLOPs per clip and per optimizer step
  (forward + backward of every view, counted as ``videossl bench train`` counts them), steps per epoch and in
  total, total PFLOPs and GPU-hours at a stated MFU on a named GPU;
- peak memory per GPU at the recipe's batch and precision (``memory.py``): measured where a CUDA device is
  present, simulated on the ``meta`` device otherwise;
- the published numbers the recipe targets (its ``reference:`` section).

Exit 0 when the plan is runnable, 1 with one line per problem otherwise (no data root, no videos found, too many
missing or unreadable files, pretrained weights that are not there, memory above the GPU's); a config mistake is a
one-line error (exit 2), as for ``pretrain``.
"""
from __future__ import annotations

import argparse
import json
import math
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from videossl import resolve_recipe
from videossl.config import load_pretrain_config
from videossl.errors import UserError

from .compute import DEFAULT_GPU, GPUS, Gpu, cost, default_mfu, model_summary, schedule, step_flops
from .data_check import check_data
from .memory import CUDA_OVERHEAD_GIB, estimate_peak_memory, measure_cuda_peak
from .report import format_plan

WEIGHT_KEYS = ("pretrained", "image_weights")  # settings naming a local weights file to load while building


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe file or name in recipes/")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, as for `videossl pretrain`")
    parser.add_argument("--probe", type=int, default=16, metavar="N", help="decode-check N sampled videos (default 16)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the probe's sample (default 0)")
    parser.add_argument("--gpu", default=DEFAULT_GPU, choices=sorted(GPUS),
                        help=f"GPU to price and fit on (default {DEFAULT_GPU}: 989 TFLOP/s bf16 dense, 80 GiB)")
    parser.add_argument("--peak-tflops", type=float, default=None, help="override the GPU's peak TFLOP/s")
    parser.add_argument("--gpu-memory-gib", type=float, default=None, help="override the GPU's memory (GiB)")
    parser.add_argument("--mfu", type=float, default=None,
                        help="model FLOP utilisation (default: our measured H100 value for the backbone family)")
    parser.add_argument("--videos", type=int, default=None, metavar="N",
                        help="price the schedule for N training videos when the data is not here")
    parser.add_argument("--max-missing", type=float, default=5.0, metavar="PCT",
                        help="more listed videos missing than this is a problem (default 5%%)")
    parser.add_argument("--max-unreadable", type=float, default=10.0, metavar="PCT",
                        help="more probed videos unreadable than this is a problem (default 10%%)")
    parser.add_argument("--json", action="store_true", help="print the plan as one JSON object")


def _check_args(args: argparse.Namespace) -> None:
    if args.probe < 0:
        raise UserError(f"plan --probe: must be >= 0, got {args.probe}")
    if args.mfu is not None and not 0 < args.mfu <= 1:
        raise UserError(f"plan --mfu: a fraction in (0, 1], got {args.mfu}")
    if args.videos is not None and args.videos < 0:
        raise UserError(f"plan --videos: must be >= 0, got {args.videos}")
    for name in ("peak_tflops", "gpu_memory_gib"):
        value = getattr(args, name)
        if value is not None and not (math.isfinite(value) and value > 0):
            raise UserError(f"plan --{name.replace('_', '-')}: must be a positive number, got {value}")


def weight_files(cfg: Any) -> tuple[Any, list[str]]:
    """A copy of ``cfg`` without local weight files (the plan needs shapes, not weights) and one problem line per
    weights file that does not exist."""
    cfg = cfg.copy()
    OmegaConf.set_readonly(cfg, False)
    problems = []
    for section in ("backbone", "backbone.kwargs", "method"):
        node = OmegaConf.select(cfg, section)
        for key in WEIGHT_KEYS:
            value = node.get(key) if node is not None and key in node else None
            if value:
                if not Path(str(value)).expanduser().exists():
                    problems.append(f"{section}.{key}: no such file: {value} (weights load from local files only)")
                node[key] = ""
    return cfg, problems


def resolve_precision(cfg: Any) -> str:
    """``train.precision``, with ``auto`` as the trainer resolves it on a GPU machine (CPU recipes: 32-true)."""
    precision = str(cfg.train.precision)
    if precision == "auto":
        return "32-true" if cfg.train.accelerator == "cpu" else "bf16-mixed"
    return precision


def _gpu(args: argparse.Namespace) -> Gpu:
    base = GPUS[args.gpu]
    return Gpu(base.name, args.peak_tflops or base.peak_tflops, args.gpu_memory_gib or base.memory_gib)


def peak_memory(cfg: Any, precision: str, world_size: int) -> dict[str, Any]:
    """Measured on the CUDA device when one is here (and the recipe trains on GPU), else simulated."""
    batch = int(cfg.train.batch_size)
    if torch.cuda.is_available() and cfg.train.accelerator != "cpu":
        try:
            return measure_cuda_peak(cfg, batch, precision, world_size)
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            return {"peak_mib": float("inf"), "how": f"measured: out of memory on {torch.cuda.get_device_name(0)} "
                                                     f"at batch {batch}", "precision": precision}
    return estimate_peak_memory(cfg, batch, precision, world_size)


def memory_problem(memory: dict[str, Any], gpu: Gpu, batch: int) -> str | None:
    """One line when the peak (+ the CUDA context) does not fit the GPU, with the largest batch that would."""
    need_gib = memory["peak_mib"] / 1024 + CUDA_OVERHEAD_GIB
    if need_gib <= gpu.memory_gib:
        return None
    if not math.isfinite(need_gib):
        return f"train.batch_size={batch} does not fit: {memory['how']}"
    hint = ""
    per_sample = memory.get("activations_mib", 0.0) / max(1, batch)
    if per_sample > 0 and math.isfinite(need_gib):
        fixed_gib = need_gib - memory["activations_mib"] / 1024
        fits = int((gpu.memory_gib - fixed_gib) * 1024 // per_sample)
        hint = f"; about train.batch_size={fits} would fit" if fits >= 1 else "; not even batch 1 fits"
    return (f"peak memory {need_gib:.1f} GiB per GPU (incl. {CUDA_OVERHEAD_GIB:g} GiB CUDA context) is above the "
            f"{gpu.name}'s {gpu.memory_gib:g} GiB at train.batch_size={batch}{hint}")


def make_plan(recipe: str, overrides: list[str], args: argparse.Namespace) -> dict[str, Any]:
    """Every section of the plan as plain data (what ``--json`` prints); ``problems`` empty means runnable."""
    path = resolve_recipe(recipe)
    cfg, weight_problems = weight_files(load_pretrain_config(path, overrides, hardware=False))
    data = check_data(cfg, args.probe, args.seed, args.max_missing, args.max_unreadable)
    model = model_summary(cfg)
    flops = step_flops(cfg, int(cfg.train.batch_size))
    precision = resolve_precision(cfg)
    videos, videos_from = (data["listed"], "listed") if data["listed"] is not None else (args.videos, "--videos")
    sched = schedule(cfg, videos)
    sched.update(videos=videos, videos_from=videos_from if videos is not None else None)
    memory = peak_memory(cfg, precision, sched["world_size"])
    gpu = _gpu(args)
    mfu, mfu_source = (args.mfu, "given (--mfu)") if args.mfu else default_mfu(model["family"], precision, cfg.train)
    problems = [*data["problems"], *weight_problems]
    mem_line = memory_problem(memory, gpu, int(cfg.train.batch_size))
    if mem_line:
        problems.append(mem_line)
    if sched["steps_per_epoch"] == 0:
        problems.append(f"{videos} videos give no optimizer step at global batch {sched['global_batch']} "
                        f"(train.batch_size x devices x num_nodes x optim.accumulate)")
    data["missing_count"] = len(data["missing"])
    data["missing"] = data["missing"][:100]
    return {"recipe": str(path), "overrides": list(overrides), "method": cfg.method.name,
            "backbone": cfg.backbone.name, "precision": precision, "batch_size": int(cfg.train.batch_size),
            "data": data, "model": model, "flops": flops, "memory": memory, "schedule": sched,
            "gpu": {"name": gpu.name, "key": args.gpu, "peak_tflops": gpu.peak_tflops, "memory_gib": gpu.memory_gib},
            "mfu": {"value": mfu, "source": mfu_source}, "cost": cost(flops["total"], sched, gpu, mfu),
            "reference": OmegaConf.to_container(cfg.reference), "problems": problems,
            "warnings": data.get("warnings", []), "runnable": not problems}


def run(args: argparse.Namespace) -> int:
    _check_args(args)
    plan = make_plan(args.recipe, list(args.overrides), args)
    if args.json:
        print(json.dumps(_finite(plan), indent=1, default=str))
    else:
        print("\n".join(format_plan(plan)))
    return 0 if plan["runnable"] else 1


def _finite(value: Any) -> Any:
    """``value`` with non-finite floats (an out-of-memory peak) as ``None``, so the JSON is strict."""
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    return value
