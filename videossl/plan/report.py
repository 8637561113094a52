"""The text form of a plan (``videossl plan`` without ``--json``): one section per question, problems last."""
from __future__ import annotations

from typing import Any

from videossl.reference import format_reference

from .compute import human


def _count(value: Any) -> str:
    return "-" if value is None else f"{value:,}"


def _spread(spread: dict[str, float] | None, unit: str) -> str:
    if not spread:
        return "-"
    return f"{spread['min']:.3g} / {spread['median']:.3g} / {spread['max']:.3g}{unit}"


def _top(counts: dict[str, int], show: int = 4) -> str:
    items = list(counts.items())
    text = ", ".join(f"{name} x{n}" for name, n in items[:show])
    return (text + f", ... ({len(items) - show} more)") if len(items) > show else (text or "-")


def format_data(data: dict[str, Any]) -> list[str]:
    where = "synthetic" if data["format"] == "synthetic" else f"{data['root'] or '(data.root empty)'}"
    lines = [f"data: {data['format']} split {data['split']} at {where}" + (f"; {data['note']}" if data["note"] else "")]
    lines.append(f"  videos listed {_count(data['listed'])}, found {_count(data['found'])}, "
                 f"missing {_count(data.get('missing_count') if data['listed'] is not None else None)}")
    probe = data.get("probe")
    if probe:
        lines.append(f"  probe: {probe['probed']} files (seed {probe['seed']}) with {probe['decoder']}: "
                     f"{probe['readable']} readable, {len(probe['unreadable'])} unreadable")
        for reason in probe["unreadable"].values():
            lines.append(f"    unreadable: {reason}")
        if probe["readable"]:
            lines.append(f"    codecs: {_top(probe['codecs'])}; resolutions: {_top(probe['resolutions'])}; "
                         f"with audio: {probe['with_audio']}")
            lines.append(f"    fps min / median / max: {_spread(probe['fps'], '')}; "
                         f"duration: {_spread(probe['duration_s'], ' s')}")
    return lines


def format_compute(plan: dict[str, Any]) -> list[str]:
    model, flops, sched, cost = plan["model"], plan["flops"], plan["schedule"], plan["cost"]
    views: dict[str, int] = {}
    for view in model["views"]:
        key = f"{view['modality']} {'x'.join(str(s) for s in view['shape'])}"
        views[key] = views.get(key, 0) + 1
    lines = [f"model: {plan['method']} on {plan['backbone']} ({model['family']}), built on the {model['built_on']} "
             f"device: {human(model['params'])} parameters ({human(model['trained_params'])} trained, encoder "
             f"{human(model['encoder_params'])})",
             "  views per sample: " + ", ".join(f"{n} x {key}" for key, n in views.items())]
    for clip in model["per_clip"]:
        shape = "x".join(str(s) for s in clip["shape"])
        lines.append(f"  FLOPs per clip (encoder forward, {clip['modality']} {shape}): {human(clip['flops'])}")
    ratio = flops["total"] / flops["forward"] if flops["forward"] else float("nan")
    lines.append(f"  FLOPs per process step (batch {plan['batch_size']}, every view): {human(flops['total'])} = "
                 f"forward {human(flops['forward'])} + backward {human(flops['backward'])} ({ratio:.2f}x forward); "
                 f"{flops['how']}")
    lines.append(f"  FLOPs per optimizer step: {human(cost['flops_per_optimizer_step'])} ({sched['world_size']} "
                 f"processes x {sched['accumulate']} micro-batches)")
    steps = (f"{_count(sched['steps_per_epoch'])} steps per epoch x {sched['epochs']} epochs"
             + (f", capped at train.max_steps={sched['max_steps']}" if sched["max_steps"] else "")
             + f" = {_count(sched['total_steps'])} steps")
    videos = (f"{sched['videos']:,} videos ({sched['videos_from']})" if sched["videos"] is not None
              else "video count unknown (no data here; --videos N prices it)")
    lines.append(f"schedule: global batch {sched['global_batch']} ({sched['world_size']} GPUs x batch "
                 f"{plan['batch_size']} x accumulate {sched['accumulate']}); {videos}; {steps}")
    return lines


def duration(hours: float, prefix: str = "") -> str:
    """``1,234 GPU-hours``, ``5.4 GPU-minutes`` or ``0.33 GPU-seconds`` (``prefix="GPU-"``); plain units without."""
    if hours >= 1:
        return f"{hours:,.0f} {prefix}hours" if hours >= 1000 else f"{hours:.4g} {prefix}hours"
    if hours * 60 >= 1:
        return f"{hours * 60:.3g} {prefix}minutes"
    return f"{hours * 3600:.3g} {prefix}seconds"


def format_cost(plan: dict[str, Any]) -> list[str]:
    cost, gpu, mfu = plan["cost"], plan["gpu"], plan["mfu"]
    rate = f"{gpu['name']} at {gpu['peak_tflops']:g} TFLOP/s bf16 dense and MFU {mfu['value']:.3g} ({mfu['source']})"
    if cost["gpu_hours"] is None:
        return [f"cost: {duration(cost['gpu_hours_per_100k_videos_epoch'], 'GPU-')} per 100k videos per epoch on "
                f"{rate}"]
    pflops = f"{cost['total_pflops']:,.0f}" if cost["total_pflops"] >= 1000 else f"{cost['total_pflops']:.4g}"
    return [f"cost: {pflops} PFLOPs in total = {duration(cost['gpu_hours'], 'GPU-')} "
            f"({duration(cost['wall_hours'])} on {plan['schedule']['world_size']} GPUs) on {rate}"]


def format_memory(plan: dict[str, Any]) -> list[str]:
    memory, gpu = plan["memory"], plan["gpu"]
    peak = memory["peak_mib"]
    lines = [f"memory per GPU ({memory['precision']}, batch {plan['batch_size']}): peak "
             + (f"{peak / 1024:.2f} GiB" if peak != float("inf") else "out of memory")
             + f" of the {gpu['name']}'s {gpu['memory_gib']:g} GiB; {memory['how']}"]
    if "activations_mib" in memory:
        parts = [("parameters + buffers", memory["params_mib"] + memory["buffers_mib"]),
                 ("gradients", memory["grads_mib"]), ("optimizer state", memory["optimizer_mib"]),
                 ("activations and backward temporaries", memory["activations_mib"])]
        if memory["ddp_buckets_mib"]:
            parts.append(("DDP gradient buckets", memory["ddp_buckets_mib"]))
        lines.append("  " + ", ".join(f"{name} {value / 1024:.3g} GiB" for name, value in parts)
                     + "; the CUDA context and cuDNN workspaces (~1 GiB) are not included")
    return lines


def format_plan(plan: dict[str, Any]) -> list[str]:
    """The report's lines."""
    lines = [f"plan: {plan['recipe']}" + (f" {' '.join(plan['overrides'])}" if plan["overrides"] else "")]
    lines += format_data(plan["data"])
    lines += format_compute(plan)
    lines += format_memory(plan)
    lines += format_cost(plan)
    reference = format_reference(plan["reference"], indent="  ")
    lines += ["reference:", *reference] if reference else ["reference: none (a synthetic or toy recipe)"]
    for warning in plan["warnings"]:
        lines.append(f"warning: {warning}")
    if plan["problems"]:
        lines.append(f"NOT RUNNABLE ({len(plan['problems'])} problems):")
        lines += [f"problem: {p}" if not p.startswith("  ") else f"problem: {p.strip()}" for p in plan["problems"]]
    else:
        lines.append("runnable: yes")
    return lines
