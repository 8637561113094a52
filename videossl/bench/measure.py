"""Timing, peak memory and FLOPs of training-step runners (``bench/peers.py``).

- Time: implementations are interleaved (ours, peer, ours, peer ...) for ``repeats`` rounds of ``steps``
  steps each, after one warm-up step each; the median seconds per step over rounds is reported, so a change in
  machine load affects every implementation alike. CUDA is synchronised around every round.
- Peak memory: on CUDA ``torch.cuda.max_memory_allocated`` around the steps (in-process). On CPU the process's
  allocator keeps freed memory, so each implementation runs in a fresh process and we report how far the
  resident set rises during 2 steps above the resident set of the built model and batch (``rss_growth_mb``:
  sampled every ms, and ``ru_maxrss``): activations, gradients and optimizer state, plus allocator slack.
- FLOPs: ``torch.utils.flop_counter.FlopCounterMode`` over one full step (forward + backward; matmuls,
  convolutions and attention; the optimizer's element-wise work is not counted, as in the MFU convention),
  on the meta device (``meta_flops``) so that attention is counted on every device.
"""
from __future__ import annotations

import json
import statistics
import subprocess
import sys
import threading
import time
from dataclasses import asdict
from typing import Any

import torch
from torch.utils.flop_counter import FlopCounterMode

from videossl.reliability.soak import rss_mb

from .flops import training_step_flops
from .peers import Runner, StepSpec, build_config, build_runner


def synchronize(device: str) -> None:
    if device.startswith("cuda"):
        torch.cuda.synchronize()


def time_interleaved(runners: list[Runner], device: str, steps: int, repeats: int,
                     warmup: int = 1) -> dict[str, float]:
    """``{runner name: median seconds per step}`` with the runners interleaved round by round."""
    for runner in runners:
        for _ in range(warmup):
            runner.step()
    synchronize(device)
    samples: dict[str, list[float]] = {r.name: [] for r in runners}
    for _ in range(repeats):
        for runner in runners:
            started = time.perf_counter()
            for _ in range(steps):
                runner.step()
            synchronize(device)
            samples[runner.name].append((time.perf_counter() - started) / steps)
    return {name: statistics.median(values) for name, values in samples.items()}


def meta_flops(spec: StepSpec) -> float:
    """Model FLOPs of one training step of our ``spec.method`` (forward + backward), counted on the ``meta``
    device: no memory and no compute, so it also sizes steps too big to run. SDPA is counted through its math
    decomposition (``4 B H N^2 d`` forward), which CPU runs would miss: FlopCounterMode has no formula for the
    CPU flash kernel. The counting is ``bench/flops.py``'s, which ``videossl plan`` shares."""
    return training_step_flops(build_config(spec), spec.batch, spec.seed)["total"]


def step_flops(runner: Runner) -> float:
    """Model FLOPs of one training step (forward + backward) counted while it runs (on CPU this misses SDPA's
    flash kernel: prefer ``meta_flops``)."""
    counter = FlopCounterMode(display=False)
    with counter:
        runner.step()
    return float(counter.get_total_flops())


def _max_rss_mb() -> float:
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: kB


def rss_growth_mb(fn: Any) -> tuple[Any, float, float]:
    """Run ``fn()``; return ``(its result, peak RSS growth in MB, RSS before in MB)``. The peak is the larger of
    the resident set sampled every millisecond by a thread and the process's ``ru_maxrss`` (which catches
    short spikes, but only above the process's earlier peak), both minus the resident set before."""
    before, peak_before = rss_mb(), _max_rss_mb()
    peak = [before]
    done = threading.Event()

    def sample() -> None:
        while not done.wait(0.001):
            peak[0] = max(peak[0], rss_mb())

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    try:
        result = fn()
    finally:
        done.set()
        sampler.join()
    peak_after = _max_rss_mb()
    sampled = max(peak[0], rss_mb())
    return result, max(sampled, peak_after if peak_after > peak_before else 0.0) - before, before


def _memory_child(impl: str, spec: StepSpec, threads: int, steps: int) -> dict[str, Any]:
    torch.set_num_threads(threads)
    runner = build_runner(impl, spec)
    _, growth, before = rss_growth_mb(lambda: [runner.step() for _ in range(steps)])
    return {"peak_mb": growth, "base_mb": before}


def peak_memory_mb(impl: str, spec: StepSpec, threads: int = 1, steps: int = 2,
                   runner: Runner | None = None) -> dict[str, Any]:
    """``{"peak_mb", "how"}``: CUDA peak allocated in this process (with ``runner``), or on CPU the growth of the
    peak RSS of a fresh process over ``steps`` steps (see the module docstring)."""
    if spec.device.startswith("cuda"):
        runner = runner or build_runner(impl, spec)
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        for _ in range(steps):
            runner.step()
        torch.cuda.synchronize()
        return {"peak_mb": (torch.cuda.max_memory_allocated() - base) / 2**20, "how": "cuda max_memory_allocated"}
    result = run_in_fresh_process("videossl.bench.measure", "_memory_child", impl, asdict(spec), threads, steps)
    if "error" in result:
        return {"peak_mb": float("nan"), "how": result["error"]}
    return {**result, "how": "CPU peak-RSS growth, fresh process"}


def run_in_fresh_process(module: str, function: str, *args: Any, timeout_s: float = 900) -> dict[str, Any]:
    """Call ``function(*args)`` of ``module`` in a new Python process (``python -m module function args-json``,
    the module's ``__main__`` calls :func:`main_of`); its dict result comes back as JSON, a failure as
    ``{"error": "one line"}``."""
    try:
        done = subprocess.run([sys.executable, "-m", module, function, json.dumps(args)],
                              capture_output=True, text=True, timeout=timeout_s)
    except subprocess.TimeoutExpired:
        return {"error": f"{function} took longer than {timeout_s:.0f} s"}
    lines = [line for line in done.stdout.splitlines() if line.startswith("{")]
    if done.returncode != 0 or not lines:
        tail = (done.stderr.strip().splitlines() or ["no output"])[-1]
        return {"error": f"{function} failed: {tail}"}
    return json.loads(lines[-1])


def main_of(functions: dict[str, Any], argv: list[str]) -> int:
    """``python -m <module> function args-json``: call ``functions[function]`` and print its dict as JSON. A dict
    argument with a ``method`` and a ``backbone`` key becomes a ``StepSpec``."""
    function, args = argv[0], json.loads(argv[1])
    args = [StepSpec(**a) if isinstance(a, dict) and {"method", "backbone"} <= set(a) else a for a in args]
    print(json.dumps(functions[function](*args)))
    return 0


if __name__ == "__main__":
    import sys

    sys.exit(main_of({"_memory_child": _memory_child}, sys.argv[1:]))
