"""Cost part of ``videossl bench train``: step time, memory and MFU against clip length and crop size.

For each backbone (default one 3D CNN, R(2+1)D-18, and one ViT, VideoMAE ViT-S/16, random init) and each
(frames, crop), one training step of ``--cost-method`` (default SimCLR, 2 views of ``--cost-batch`` samples).
The model FLOPs of a step are counted first on the ``meta`` device (``measure.meta_flops``: no memory, no
compute), so a case can be skipped before it runs when the FLOP rate
measured on the previous case of the same backbone predicts more than ``--max-step-s`` per step. Each case that
runs does so in a fresh process (1 warm-up step, then ``--steps`` timed steps), which gives the peak memory: on
CPU the growth of the peak resident set over the steps, on CUDA ``max_memory_allocated``. Attention cost grows
with the square of the token count (T/2 x S/16 x S/16 for VideoMAE), convolution cost linearly with T x S^2.
"""
from __future__ import annotations

import argparse
import time
from dataclasses import asdict, replace
from typing import Any

import torch

from .measure import main_of, meta_flops, rss_growth_mb, run_in_fresh_process, synchronize
from .peers import StepSpec, build_runner


def _cost_child(spec: StepSpec, threads: int, steps: int, max_step_s: float) -> dict[str, Any]:
    torch.set_num_threads(threads)
    runner = build_runner("ours", spec)
    cuda = spec.device.startswith("cuda")
    if cuda:
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()

    def timed_steps() -> list[float]:
        started = time.perf_counter()
        runner.step()
        synchronize(spec.device)
        times = [time.perf_counter() - started]
        if times[0] <= max_step_s:
            times = []
            for _ in range(steps):
                started = time.perf_counter()
                runner.step()
                synchronize(spec.device)
                times.append(time.perf_counter() - started)
        return times

    times, peak, _ = rss_growth_mb(timed_steps)
    if cuda:
        peak = (torch.cuda.max_memory_allocated() - base) / 2**20
    return {"s_per_step": min(times), "peak_mb": peak, "clips_per_step": runner.clips_per_step,
            "warmup_only": len(times) == 1 and steps != 1}


def run_cost(args: argparse.Namespace, device: str, precision: str) -> str:
    lines = [f"## Cost against clip length and crop\n\n`{args.cost_method}` step, {args.cost_batch} samples x 2 views, "
             f"best of {args.steps} timed steps after 1 warm-up; each case in a fresh process; cases predicted "
             f"(from the FLOP rate of the previous case) to take more than {args.max_step_s:g} s per step are "
             f"skipped. MFU against {args.peak_tflops:g} TFLOP/s.\n",
             "| backbone | frames | crop | GFLOP/step | s/step | clips/s | peak MB | TFLOP/s | MFU | note |",
             "|---|---:|---:|---:|---:|---:|---:|---:|---:|---|"]
    for backbone in args.cost_backbones:
        rate = None  # FLOP/s of the last measured case of this backbone
        cases = sorted(((f, c) for f in args.cost_frames for c in args.cost_crops), key=lambda fc: fc[0] * fc[1] ** 2)
        for frames, crop in cases:
            spec = StepSpec(args.cost_method, backbone, args.cost_batch, frames, crop, device, precision, args.compile,
                            args.channels_last)
            print(f"cost: {spec.label()}", flush=True)
            flops = meta_flops(replace(spec, device="cpu"))
            row = f"| {backbone} | {frames} | {crop} | {flops / 1e9:.1f} |"
            if rate is not None and flops / rate > args.max_step_s:
                lines.append(f"{row} - | - | - | - | - | skipped: predicted {flops / rate:.0f} s/step |")
                continue
            result = run_in_fresh_process("videossl.bench.cost", "_cost_child", asdict(spec), args.threads, args.steps,
                                          args.max_step_s)
            if "error" in result:
                lines.append(f"{row} - | - | - | - | - | {result['error'][:120]} |")
                continue
            seconds = result["s_per_step"]
            rate = flops / seconds
            note = "warm-up step only (too slow)" if result["warmup_only"] else ""
            lines.append(f"{row} {seconds:.2f} | {result['clips_per_step'] / seconds:.3g} | {result['peak_mb']:.0f} | "
                         f"{rate / 1e12:.4f} | {100 * rate / (args.peak_tflops * 1e12):.3g}% | {note} |")
    return "\n".join(lines)


if __name__ == "__main__":
    import sys

    sys.exit(main_of({"_cost_child": _cost_child}, sys.argv[1:]))
