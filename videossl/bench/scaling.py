"""Scaling part of ``videossl bench train``: DDP processes and dataloader workers.

- DDP: ``world`` processes (``python -m videossl.bench.scaling``), gloo on CPU / NCCL on CUDA, each with
  ``torch.distributed`` + ``DistributedDataParallel`` around our method (its ``training_step`` goes through
  DDP's forward, as Fabric's ``mark_forward_method`` does in the trainer) and its own batch of ``B`` samples;
  the losses gather embeddings across processes themselves. Global clips/s = world x clips per step / step
  time; scaling efficiency = clips/s(world) / (world x clips/s(1)). On CPU each process gets
  ``threads // world`` torch threads (at least 1), so the processes share the cores the 1-process run had.
- Data: clips/s of the recipe's dataloader (decode + views + augmentation, no model) with 0, 1, 2 workers,
  after the first batch (worker start-up).
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import statistics
import subprocess
import sys
import time
from dataclasses import asdict
from typing import Any

import torch
from torch import nn

from videossl import resolve_recipe
from videossl.config import load_pretrain_config
from videossl.data.build import build_dataset
from videossl.data.loader import build_train_loader
from videossl.engine.optim import build_optimizer
from videossl.methods import METHODS, StepInfo

from .peers import StepSpec, autocast, build_config, count_clips, method_batch


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def ddp_worker(rank: int, world: int, spec_json: str, steps: int, threads: int) -> dict[str, Any]:
    """Run in each process: time ``steps`` DDP training steps after one warm-up; rank 0 reports."""
    import torch.distributed as dist
    torch.set_num_threads(threads)
    spec = StepSpec(**json.loads(spec_json))
    cuda = spec.device.startswith("cuda")
    if cuda:
        torch.cuda.set_device(rank)
        spec.device = f"cuda:{rank}"
    dist.init_process_group("nccl" if cuda else "gloo", rank=rank, world_size=world)
    cfg = build_config(spec)
    torch.manual_seed(spec.seed)
    method = METHODS[spec.method](cfg)
    batch = method_batch(cfg, method, spec.batch, spec.device, spec.seed + rank)
    method.to(spec.device).train()

    class StepModule(nn.Module):  # DDP syncs gradients of what runs through its forward
        def __init__(self):
            super().__init__()
            self.method = method

        def forward(self, batch, info):
            return self.method.training_step(batch, info)["loss"]

    model = nn.parallel.DistributedDataParallel(StepModule(), device_ids=[rank] if cuda else None,
                                                find_unused_parameters=False)
    optimizer = build_optimizer(method, cfg.optim)
    info = StepInfo(0, 1000, 0)

    def step():
        with autocast(spec):
            loss = model(batch, info)
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        method.on_after_optimizer_step(info)

    step()
    times = []
    for _ in range(steps):
        dist.barrier()
        started = time.perf_counter()
        step()
        if cuda:
            torch.cuda.synchronize()
        times.append(time.perf_counter() - started)
    dist.barrier()
    dist.destroy_process_group()
    return {"s_per_step": statistics.median(times), "clips_per_step": count_clips(batch) * world}


def ddp_throughput(spec: Any, world: int, steps: int, threads: int, timeout_s: float = 600) -> dict[str, Any]:
    """Launch ``world`` processes of :func:`ddp_worker`; ``{"s_per_step", "clips_per_s"}`` from rank 0."""
    env = {**os.environ, "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": str(_free_port())}
    procs = [subprocess.Popen([sys.executable, "-m", "videossl.bench.scaling", str(rank), str(world),
                               json.dumps(asdict(spec)), str(steps), str(threads)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for rank in range(world)]
    outputs = []
    for proc in procs:
        try:
            outputs.append(proc.communicate(timeout=timeout_s))
        except subprocess.TimeoutExpired:
            for p in procs:
                p.kill()
            return {"error": f"DDP x{world} took longer than {timeout_s:.0f} s"}
    if any(p.returncode for p in procs):
        tail = next(((err.strip().splitlines() or [""])[-1] for (_, err), p in zip(outputs, procs) if p.returncode), "")
        return {"error": f"DDP x{world} failed: {tail}"}
    result = json.loads([line for line in outputs[0][0].splitlines() if line.startswith("{")][-1])
    result["clips_per_s"] = result["clips_per_step"] / result["s_per_step"]
    return result


def loader_throughput(recipe: str, overrides: list[str], workers: int, batches: int) -> dict[str, Any]:
    """Clips/s of the recipe's training dataloader with ``workers`` workers, after its first batch."""
    cfg = load_pretrain_config(resolve_recipe(recipe), overrides)
    views = METHODS[cfg.method.name](cfg).views()
    dataset = build_dataset(cfg.data, views, split=cfg.data.split, seed=0)
    loader, _ = build_train_loader(dataset, cfg.train.batch_size, seed=0, num_workers=workers,
                                   prefetch_factor=cfg.data.prefetch_factor, persistent_workers=False)
    iterator = iter(loader)
    next(iterator)
    clips, started = 0, time.perf_counter()
    for _ in range(batches):
        clips += count_clips(next(iterator))
    elapsed = time.perf_counter() - started
    del iterator
    return {"workers": workers, "clips_per_s": clips / elapsed, "batches": batches}


def run_scaling(args: argparse.Namespace, device: str) -> str:
    spec = StepSpec(args.scaling_method, args.scaling_backbone, args.batch, args.frames, args.crop, device)
    steps = max(args.steps * args.repeats, 1)
    worlds = (1, 2)
    lines = [f"## Scaling\n\nDDP ({'NCCL' if device.startswith('cuda') else 'gloo'}), {spec.label()} per process, "
             f"median of {steps} steps; on CPU each process has max(1, {args.threads} // processes) torch threads.\n",
             "| processes | threads/process | s/step | global clips/s | scaling efficiency |",
             "|---:|---:|---:|---:|---:|"]
    base = None
    for world in worlds:
        threads = max(1, args.threads // world)
        print(f"scaling: DDP x{world}", flush=True)
        result = ddp_throughput(spec, world, steps, threads)
        if "error" in result:
            lines.append(f"| {world} | {threads} | - | - | {result['error']} |")
            continue
        base = base or result["clips_per_s"]
        efficiency = result["clips_per_s"] / (world * base)
        lines.append(f"| {world} | {threads} | {result['s_per_step']:.3f} | {result['clips_per_s']:.1f} | "
                     f"{100 * efficiency:.0f}% |")
    overrides = ["data.synthetic.num_pool=16", "data.synthetic.num_train=2", "data.synthetic.num_test=2",
                 "data.synthetic.size=32", "train.batch_size=2"] if args.tiny else []
    batches = 2 if args.tiny else 10
    lines += ["", f"Data pipeline of `{args.e2e}` (decode + views + augmentation, no model), {batches} batches "
                  "after the first:\n", "| workers | clips/s |", "|---:|---:|"]
    for workers in (0, 1, 2):
        print(f"scaling: loader with {workers} workers", flush=True)
        result = loader_throughput(args.e2e, overrides, workers, batches)
        lines.append(f"| {workers} | {result['clips_per_s']:.1f} |")
    return "\n".join(lines)


if __name__ == "__main__":
    rank, world, spec_json, steps, threads = sys.argv[1:6]
    print(json.dumps(ddp_worker(int(rank), int(world), spec_json, int(steps), int(threads))))
