"""``videossl bench train``: training-step throughput, memory and MFU per method and backbone, against peers.

    videossl bench train [--methods simclr byol ...] [--backbones tiny_r3d r2plus1d_18 ...] [--batch 8]
                         [--frames 8] [--crop 64] [--steps 2] [--repeats 5] [--device cpu|cuda]
                         [--precision 32-true|bf16-mixed] [--compile] [--channels-last]
                         [--parts step,e2e,scaling,cost] [--e2e RECIPE] [--tiny] [--write-doc FILE.md]

Parts (``--parts``, default ``step``; ``--tiny`` runs every part once at tiny size, for CI):

- ``step``: one full training step (forward, loss, backward, optimizer step, EMA hook) on a fixed random batch
  shaped as the method's views (``bench/peers.py``), ours and, in the same run, interleaved, the peers'
  implementation of the same method on the same backbone, batch and input: pytorchvideo's ``SimCLR`` / ``BYOL``
  modules and lightly's heads + losses. Reports clips/s (view clips per second), ours/peer, peak memory
  (``bench/measure.py`` says how) and ours' model FLOPs, achieved FLOP/s and MFU against ``--peak-tflops``.
- ``e2e``: a short pretraining of ``--e2e RECIPE`` (default the quickstart) with its dataloader settings; the
  trainer's ``data_wait`` (fraction of step time spent waiting for the next batch) from ``metrics.csv``.
- ``scaling``: DDP with 1 and 2 processes, and data-pipeline clips/s against dataloader workers
  (``bench/scaling.py``).
- ``cost``: step time, memory and MFU against clip length and crop size for a 3D CNN and a ViT
  (``bench/cost.py``).
"""
from __future__ import annotations

import argparse
import csv
import math
import os
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

import torch

from videossl import resolve_recipe
from videossl.backbones import BACKBONES
from videossl.config import load_pretrain_config
from videossl.engine.trainer import pretrain
from videossl.errors import UserError
from videossl.methods import METHODS

from .cost import run_cost
from .measure import meta_flops, peak_memory_mb, step_flops, time_interleaved
from .peers import PEERS, StepSpec, build_runner
from .scaling import run_scaling

PARTS = ("step", "e2e", "scaling", "cost")
DEFAULT_METHODS = ("simclr", "byol", "simsiam", "barlow_twins", "vicreg")
H100_BF16_DENSE_TFLOPS = 989.0  # NVIDIA H100 SXM datasheet: 989 TFLOP/s bf16 dense tensor cores


def _fmt(value: float | None, spec: str = ".1f", suffix: str = "") -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    return f"{value:{spec}}{suffix}"


# ---------------------------------------------------------------------------------------------------- step


def bench_step(spec: Any, peers: list[str], steps: int, repeats: int, threads: int, memory: bool,
               peak_tflops: float, memory_peers: bool = True) -> list[dict[str, Any]]:
    """One row per implementation of ``spec``: seconds/step (median, interleaved), clips/s, peak MB; ours also
    gets FLOPs/step, TFLOP/s and MFU."""
    impls = ["ours"] + [p for p in peers if p in PEERS.get(spec.method, ())]
    runners = [build_runner(impl, spec) for impl in impls]
    seconds = time_interleaved(runners, spec.device, steps, repeats)
    try:
        flops = meta_flops(spec)
    except Exception:  # noqa: BLE001 - a method that needs real values (e.g. .item()) is counted while running
        flops = step_flops(runners[0])
    rows = []
    for runner in runners:
        row = {"method": spec.method, "backbone": spec.backbone, "impl": runner.name,
               "s_per_step": seconds[runner.name], "clips_per_s": runner.clips_per_step / seconds[runner.name],
               "peak_mb": float("nan"), "memory_how": "not measured"}
        if memory and (runner.name == "ours" or memory_peers):
            mem = peak_memory_mb(runner.name, spec, threads=threads, runner=runner)
            row.update(peak_mb=mem["peak_mb"], memory_how=mem["how"])
        if runner.name == "ours":
            row.update(gflops=flops / 1e9, tflops_per_s=flops / seconds["ours"] / 1e12,
                       mfu=flops / seconds["ours"] / (peak_tflops * 1e12))
        rows.append(row)
    ours = rows[0]["clips_per_s"]
    for row in rows[1:]:
        row["ratio"] = ours / row["clips_per_s"]
    return rows


def format_step_table(rows: list[dict[str, Any]]) -> str:
    lines = ["| method | backbone | impl | s/step | clips/s | ours / peer | peak MB | GFLOP/step | TFLOP/s | MFU |",
             "|---|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    for r in rows:
        lines.append(f"| {r['method']} | {r['backbone']} | {r['impl']} | {r['s_per_step']:.3f} | "
                     f"{r['clips_per_s']:.2f} | {_fmt(r.get('ratio'), '.2f', 'x')} | {_fmt(r['peak_mb'], '.0f')} | "
                     f"{_fmt(r.get('gflops'), '.1f')} | {_fmt(r.get('tflops_per_s'), '.4f')} | "
                     f"{_fmt(100 * r['mfu'] if 'mfu' in r else None, '.3g', '%')} |")
    return "\n".join(lines)


# ----------------------------------------------------------------------------------------------------- e2e


def bench_e2e(recipe: str, steps: int, overrides: list[str], log_every: int = 5) -> dict[str, Any]:
    """Pretrain ``recipe`` for ``steps`` optimizer steps with its own dataloader settings; returns the trainer's
    ``data_wait`` per logged window, its mean over all windows and over the windows after the first (which
    includes starting the workers), and clips/s."""
    with tempfile.TemporaryDirectory(prefix="videossl-bench-e2e-") as tmp:
        cfg = load_pretrain_config(resolve_recipe(recipe), [
            *overrides, f"train.max_steps={steps}", f"train.log_every={log_every}", f"train.run_dir={tmp}/run",
            "train.progress=false", "train.plots=false", "train.accelerator=cpu" if not _cuda() else "train.devices=1"])
        run_dir = pretrain(cfg)
        with open(Path(run_dir) / "metrics.csv", newline="") as f:
            rows = [r for r in csv.DictReader(f) if r.get("data_wait")]
    waits = [float(r["data_wait"]) for r in rows]
    clips = [float(r["clips_per_s"]) for r in rows]
    steady, steady_clips = waits[1:] or waits, clips[1:] or clips
    return {"recipe": recipe, "steps": steps, "windows": waits, "data_wait_all": sum(waits) / len(waits),
            "data_wait_steady": sum(steady) / len(steady), "clips_per_s": sum(steady_clips) / len(steady_clips),
            "num_workers": cfg.data.num_workers, "prefetch_factor": cfg.data.prefetch_factor,
            "persistent_workers": cfg.data.persistent_workers, "batch_size": cfg.train.batch_size}


def _cuda() -> bool:
    return torch.cuda.is_available()


def format_e2e(result: dict[str, Any]) -> str:
    windows = ", ".join(f"{100 * w:.1f}%" for w in result["windows"])
    return (f"| recipe | steps | batch | workers / prefetch / persistent | data wait (after 1st window) | "
            f"data wait (all) | samples/s |\n|---|---:|---:|---|---:|---:|---:|\n"
            f"| {result['recipe']} | {result['steps']} | {result['batch_size']} | {result['num_workers']} / "
            f"{result['prefetch_factor']} / {result['persistent_workers']} | {100 * result['data_wait_steady']:.1f}% | "
            f"{100 * result['data_wait_all']:.1f}% | {result['clips_per_s']:.1f} |\n\nper logged window: {windows}")


# ----------------------------------------------------------------------------------------------------- CLI


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--methods", nargs="+", default=list(DEFAULT_METHODS), help="METHODS names")
    parser.add_argument("--backbones", nargs="+", default=["tiny_r3d", "r2plus1d_18"], help="BACKBONES names")
    parser.add_argument("--batch", type=int, default=8, help="samples per step (default: 8)")
    parser.add_argument("--frames", type=int, default=8, help="frames per clip T (default: 8)")
    parser.add_argument("--crop", type=int, default=64, help="crop size in pixels (default: 64)")
    parser.add_argument("--steps", type=int, default=2, help="steps per timed round (default: 2)")
    parser.add_argument("--repeats", type=int, default=5, help="interleaved rounds; the median is kept (default: 5)")
    parser.add_argument("--device", default=None, help="cpu | cuda (default: cuda when available)")
    parser.add_argument("--precision", default=None, help="32-true | bf16-mixed (default: bf16-mixed on cuda)")
    parser.add_argument("--compile", action="store_true", help="torch.compile the backbones' forward")
    parser.add_argument("--channels-last", action="store_true", help="channels_last_3d for 3D CNNs")
    parser.add_argument("--peers", default="pytorchvideo,lightly", help="comma list, or 'none'")
    parser.add_argument("--set", dest="overrides", action="append", default=[], metavar="KEY=VALUE",
                        help="config override for every step (e.g. method.out_dim=65536); repeatable")
    parser.add_argument("--no-memory", action="store_true", help="skip the peak-memory measurement")
    parser.add_argument("--threads", type=int, default=2, help="torch threads on CPU (default: 2)")
    parser.add_argument("--peak-tflops", type=float, default=H100_BF16_DENSE_TFLOPS,
                        help="peak FLOP/s of the device for MFU, in TFLOP/s (default: 989, H100 SXM bf16 dense)")
    parser.add_argument("--parts", default="step", help=f"comma list of {', '.join(PARTS)} (default: step)")
    parser.add_argument("--e2e", default="simclr_synthetic_tiny3d", metavar="RECIPE", help="recipe of the e2e part")
    parser.add_argument("--e2e-steps", type=int, default=40, help="optimizer steps of the e2e part (default: 40)")
    parser.add_argument("--scaling-method", default="simclr")
    parser.add_argument("--scaling-backbone", default="tiny_r3d")
    parser.add_argument("--cost-backbones", nargs="+", default=["r2plus1d_18", "videomae_vit_s16"])
    parser.add_argument("--cost-frames", nargs="+", type=int, default=[8, 16, 32])
    parser.add_argument("--cost-crops", nargs="+", type=int, default=[112, 224])
    parser.add_argument("--cost-batch", type=int, default=2, help="samples per step in the cost part (default: 2)")
    parser.add_argument("--cost-method", default="simclr")
    parser.add_argument("--max-step-s", type=float, default=60.0, help="cost part: skip cases predicted slower")
    parser.add_argument("--tiny", action="store_true", help="every part once at tiny size (CI)")
    parser.add_argument("--write-doc", default=None, help="write the tables to this markdown file")


def _check(args: argparse.Namespace) -> list[str]:
    parts = [p for p in args.parts.split(",") if p]
    bad = [p for p in parts if p not in PARTS]
    if bad:
        raise UserError(f"bench train --parts: unknown {bad}; choose from {', '.join(PARTS)}")
    for name in args.methods + [args.scaling_method, args.cost_method]:
        if name not in METHODS:
            raise UserError(f"bench train: unknown method '{name}'; see `videossl list methods`")
    for name in args.backbones + args.cost_backbones + [args.scaling_backbone]:
        if name not in BACKBONES:
            raise UserError(f"bench train: unknown backbone '{name}'; see `videossl list backbones`")
    if min(args.batch, args.frames, args.crop, args.steps, args.repeats, args.threads) < 1:
        raise UserError("bench train: --batch, --frames, --crop, --steps, --repeats and --threads must be >= 1")
    return parts


def apply_tiny(args: argparse.Namespace) -> None:
    """``--tiny``: every part once, tiny backbones, 32 px, 4 frames, 1 step (CI proves the code runs); peak memory
    of ours only (each measurement is a fresh process)."""
    args.methods = args.methods[:1] if args.methods != list(DEFAULT_METHODS) else ["simclr"]
    args.backbones = ["tiny_r3d"]
    args.batch, args.frames, args.crop, args.steps, args.repeats, args.threads = 2, 4, 32, 1, 1, 1
    args.parts = ",".join(PARTS)
    args.e2e_steps = 2
    args.cost_backbones, args.cost_frames, args.cost_crops, args.cost_batch = ["tiny_videomae"], [4], [32], 1


def run(args: argparse.Namespace) -> int:
    if args.tiny:
        apply_tiny(args)
    parts = _check(args)
    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    precision = args.precision or ("bf16-mixed" if device.startswith("cuda") else "32-true")
    torch.set_num_threads(args.threads)
    peers = [] if args.peers == "none" else [p for p in args.peers.split(",") if p]
    command = "videossl bench train " + " ".join(sys.argv[3:])
    sections = [f"Command: `{command}`\n\nDevice: {describe_device(device, args.threads)}; precision {precision}"
                f"{'; torch.compile' if args.compile else ''}{'; channels_last' if args.channels_last else ''}."]

    if "step" in parts:
        rows = []
        for backbone in args.backbones:
            for method in args.methods:
                spec = StepSpec(method, backbone, args.batch, args.frames, args.crop, device, precision, args.compile,
                                args.channels_last, list(args.overrides))
                print(f"step: {spec.label()}", flush=True)
                rows += bench_step(spec, peers, args.steps, args.repeats, args.threads, not args.no_memory,
                                   args.peak_tflops, memory_peers=not args.tiny)
        how = next((r["memory_how"] for r in rows if r["memory_how"] != "not measured"), "not measured")
        table = format_step_table(rows)
        print(table, flush=True)
        sections.append(f"## Training step (B={args.batch}, T={args.frames}, {args.crop} px)\n\n"
                        f"Median of {args.repeats} interleaved rounds of {args.steps} steps; peak memory: {how}; "
                        f"MFU against {args.peak_tflops:g} TFLOP/s.\n\n{table}")
    if "e2e" in parts:
        overrides = ["data.synthetic.num_pool=16", "data.synthetic.num_train=2", "data.synthetic.num_test=2",
                     "data.synthetic.size=32", "train.batch_size=2", "data.num_frames=4", "data.crop_size=32"] \
            if args.tiny else []
        result = bench_e2e(args.e2e, args.e2e_steps, overrides, log_every=1 if args.tiny else 5)
        table = format_e2e(result)
        print(table, flush=True)
        sections.append(f"## End-to-end data wait\n\n{table}")
    if "scaling" in parts:
        text = run_scaling(args, device)
        print(text, flush=True)
        sections.append(text)
    if "cost" in parts:
        text = run_cost(args, device, precision)
        print(text, flush=True)
        sections.append(text)
    if args.write_doc:
        Path(args.write_doc).write_text("# Training benchmarks (generated)\n\n" + "\n\n".join(sections) + "\n")
    return 0


def describe_device(device: str, threads: int) -> str:
    if device.startswith("cuda"):
        return f"{torch.cuda.get_device_name(0)}, torch {torch.__version__}"
    cpu = platform.processor() or platform.machine()
    try:
        cpu = next(line.split(":", 1)[1].strip() for line in open("/proc/cpuinfo") if line.startswith("model name"))
    except (OSError, StopIteration):
        pass
    return f"CPU {cpu}, {os.cpu_count()} cores, {threads} torch threads, torch {torch.__version__}"
