"""Peak memory of a training step per GPU: measured on a CUDA device, simulated on the ``meta`` device otherwise.

Simulation (no GPU, no compute): the method is built on ``meta`` at the recipe's batch and two full training steps
run (forward, backward, optimizer step, ``zero_grad(set_to_none=True)``, the method's after-step hook) under
:class:`LiveBytes`, a dispatch mode that adds the bytes of every new tensor storage when an operator creates it and
subtracts them when the storage is freed (a weak reference's callback). Its peak over the second step (when the
optimizer state exists) is the peak of live tensor bytes: parameters, buffers, EMA teachers, gradients, optimizer
state, activations saved for backward and the temporaries of backward. What the GPU step does differently from a
plain meta step is emulated by :class:`GpuLikeOps` above autograd, so autograd saves what it would save on a GPU:

- ``bf16-mixed`` / ``16-mixed``: CUDA autocast's rules (matmuls and convolutions in 16 bit, with one cast copy of
  each weight per forward; softmax, norms and losses in fp32);
- attention: ``scaled_dot_product_attention`` through the memory-efficient kernel (saves the output and a
  log-sum-exp, not the ``N x N`` matrix), as the GPU (and CPU) fused kernels do.

Not counted: the CUDA context and cuDNN / cuBLAS workspaces (about 0.5-1 GiB, ``CUDA_OVERHEAD_GIB`` is added when
comparing with the GPU's memory), allocator fragmentation, and the data loader's pinned buffers. With more than one
process, DDP's gradient buckets (one copy of the trained parameters) are added.

A method that cannot run on ``meta`` (``.item()``, ``nonzero``...) is simulated on CPU at batches 2 and 3 instead and
the peak extrapolated linearly to the recipe's batch; the result says so.

``measure_cpu_peak`` is the reference the simulation is tested against: a real CPU step in a fresh process, with
the peak of live tensor bytes taken from the torch profiler's allocator events (every CPU allocation and free,
kernels' own temporaries included). Measured when written (fp32, recipe batch 32): simclr_synthetic_tiny3d simulated
209 MiB vs 235 MiB measured (-11%; CPU convolution kernels' temporaries), byol_synthetic_tiny3d 295 vs 295 MiB. In
bf16 the simulation equals a real CPU autocast step counted the same way (simclr / byol / moco_v3 tiny: 131 / 171 /
172 MiB both). Against the H100 peaks of ``docs/benchmarks.md`` section 5 (``max_memory_allocated`` above the built
model and batch, bf16): SVT TimeSformer-B/16 batch 8 / 32 simulated 18.7 / 69.8 GiB vs 17.8 / 70.1 measured; SimCLR
/ BYOL R(2+1)D-18 batch 16, 16 x 112 px 7.8 / 9.3 vs 7.8 / 9.7; MAE ViT-B batch 16 (CPU path) 1.7 vs 2.0.
"""
from __future__ import annotations

import weakref
from typing import Any

import torch
from omegaconf import OmegaConf
from torch.overrides import TorchFunctionMode
from torch.profiler import ProfilerActivity, profile
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_flatten

from videossl.bench.flops import build_method
from videossl.bench.measure import run_in_fresh_process
from videossl.bench.peers import method_batch
from videossl.config import load_pretrain_config
from videossl.engine.optim import build_optimizer
from videossl.engine.trainer import apply_runtime_options
from videossl.methods import StepInfo

MIB = 2**20
CUDA_OVERHEAD_GIB = 1.0  # CUDA context + cuDNN/cuBLAS workspaces, added when comparing with a GPU's memory
LOW_PRECISION = ("bf16-mixed", "16-mixed", "bf16", "16")


class LiveBytes(TorchDispatchMode):
    """Bytes of live tensor storages created while active (plus those passed to :meth:`track`) and their peak."""

    def __init__(self) -> None:
        super().__init__()
        self.live = 0
        self.peak = 0
        self._refs: dict[int, Any] = {}

    def track(self, tensor: Any) -> None:
        """Count ``tensor``'s storage until it is freed (once per storage, views included)."""
        if not isinstance(tensor, torch.Tensor):
            return
        storage = tensor.untyped_storage()
        key = storage._cdata
        if key in self._refs:
            return
        size = storage.nbytes()
        self.live += size
        self.peak = max(self.peak, self.live)

        def freed(_ref: Any, key: int = key, size: int = size) -> None:
            self.live -= size
            self._refs.pop(key, None)

        self._refs[key] = weakref.ref(storage, freed)

    def reset_peak(self) -> None:
        self.peak = self.live

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for tensor in tree_flatten(out)[0]:
            self.track(tensor)
        return out


_F = torch.nn.functional
# CUDA autocast's lists (torch/csrc/autograd/autocast_mode.cpp), as the Python functions modules call
_TO_LOW = {torch.conv1d, torch.conv2d, torch.conv3d, _F.conv1d, _F.conv2d, _F.conv3d, torch.conv_transpose1d,
           torch.conv_transpose2d, torch.conv_transpose3d, _F.conv_transpose1d, _F.conv_transpose2d,
           _F.conv_transpose3d, _F.linear, torch.matmul, torch.mm, torch.bmm, torch.addmm, torch.baddbmm,
           torch.addbmm, torch.einsum, torch.Tensor.__matmul__, torch.Tensor.matmul, torch.Tensor.mm,
           torch.Tensor.bmm, torch.prelu, _F.prelu, _F.scaled_dot_product_attention}
_TO_FP32 = {torch.softmax, _F.softmax, torch.log_softmax, _F.log_softmax, torch.Tensor.softmax,
            torch.Tensor.log_softmax, _F.layer_norm, _F.group_norm, _F.cross_entropy, _F.nll_loss, _F.mse_loss,
            _F.l1_loss, _F.smooth_l1_loss, _F.kl_div, _F.binary_cross_entropy_with_logits, _F.cosine_similarity,
            torch.cdist, torch.logsumexp, torch.Tensor.logsumexp, torch.exp, torch.log, torch.pow, torch.Tensor.exp,
            torch.Tensor.log, torch.Tensor.pow, _F.normalize}


class GpuLikeOps(TorchFunctionMode):
    """Make a meta / CPU step save what a GPU step saves: CUDA autocast's casts when ``dtype`` is given, and SDPA
    through the memory-efficient kernel (see the module docstring). Above autograd, so casts are recorded."""

    def __init__(self, dtype: torch.dtype | None = None) -> None:
        super().__init__()
        self.dtype = dtype
        self._weights: dict[int, torch.Tensor] = {}  # autocast casts each weight once per forward

    def _cast(self, value: Any, to: torch.dtype) -> Any:
        if isinstance(value, torch.Tensor) and value.is_floating_point() and value.dtype != to:
            if isinstance(value, torch.nn.Parameter) and to == self.dtype:
                if id(value) not in self._weights:
                    self._weights[id(value)] = value.to(to)
                return self._weights[id(value)]
            return value.to(to)
        if isinstance(value, (list, tuple)):
            return type(value)(self._cast(v, to) for v in value)
        return value

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        target = self.dtype if func in _TO_LOW else torch.float32 if func in _TO_FP32 else None
        if self.dtype is not None and target is not None:
            args = self._cast(args, target)
            kwargs = {k: self._cast(v, target) for k, v in kwargs.items()}
        if func is _F.scaled_dot_product_attention:
            return _efficient_attention(*args, **kwargs)
        return func(*args, **kwargs)


def _efficient_attention(query, key, value, attn_mask=None, dropout_p=0.0, is_causal=False, scale=None,
                         enable_gqa=False):
    """SDPA through the memory-efficient kernel (``O(N)`` saved state) on ``meta``, which would otherwise take the
    math path and save the ``N x N`` matrix; the plain call elsewhere (real devices pick a fused kernel)."""
    if enable_gqa or query.dim() != 4 or query.device.type != "meta":
        return _F.scaled_dot_product_attention(query, key, value, attn_mask=attn_mask, dropout_p=dropout_p,
                                               is_causal=is_causal, scale=scale, enable_gqa=enable_gqa)
    if attn_mask is not None and attn_mask.dtype == torch.bool:
        attn_mask = torch.zeros_like(attn_mask, dtype=query.dtype).masked_fill(~attn_mask, float("-inf"))
    out = torch.ops.aten._scaled_dot_product_efficient_attention(
        query, key, value, attn_mask, True, dropout_p, is_causal, scale=scale)
    return out[0]


def _precision_dtype(precision: str) -> torch.dtype | None:
    if precision in ("bf16-mixed", "bf16"):
        return torch.bfloat16
    if precision in ("16-mixed", "16"):
        return torch.float16
    return None


def _bytes(tensors: Any) -> int:
    return sum(t.numel() * t.element_size() for t in tensors)


def optimizer_state_shapes(method: torch.nn.Module, optim_cfg: Any) -> list[tuple[torch.Size, torch.dtype]]:
    """The per-parameter state the optimizer keeps (AdamW: two moments, SGD / LARS: a momentum buffer), found by
    one step of the same optimizer on 2-element CPU stand-ins of the trained parameters (for optimizers whose
    step needs real values, e.g. a trust ratio compared with zero, and so cannot step on ``meta``)."""
    trained = [(name, p) for name, p in method.named_parameters() if p.requires_grad]
    proxy = torch.nn.Module()
    for i, (_, p) in enumerate(trained):
        stand_in = torch.nn.Parameter(torch.ones(2, dtype=p.dtype))
        stand_in.grad = torch.full_like(stand_in, 0.5)
        proxy.register_parameter(f"p{i}", stand_in)
    optimizer = build_optimizer(proxy, optim_cfg)
    optimizer.step()
    shapes = []
    for (_, p), stand_in in zip(trained, proxy.parameters()):
        for value in optimizer.state.get(stand_in, {}).values():
            if isinstance(value, torch.Tensor) and value.numel() == 2:  # per-element state (not a step counter)
                shapes.append((p.shape, value.dtype))
    return shapes


def simulate_step_memory(cfg: Any, batch_size: int, precision: str, device: str = "meta",
                         steps: int = 2) -> dict[str, Any]:
    """Live tensor bytes over ``steps`` training steps of ``cfg``'s method at ``batch_size`` on ``device``
    (``meta`` or ``cpu``): ``{"peak", "persistent", "params", "buffers", "grads", "optimizer"}`` in bytes, the
    peak taken over the last step."""
    torch.manual_seed(int(cfg.train.seed))
    method = build_method(cfg, device)
    apply_runtime_options(method, OmegaConf.create({"compile": False, "channels_last": False,
                                                    "activation_checkpointing": cfg.train.activation_checkpointing}))
    batch = method_batch(cfg, method, batch_size, device, int(cfg.train.seed))
    optimizer = build_optimizer(method, cfg.optim)
    params = _bytes(method.parameters())
    buffers = _bytes(method.buffers())
    grads = _bytes(p for p in method.parameters() if p.requires_grad)
    mode = LiveBytes()
    for tensor in [*method.parameters(), *method.buffers()]:
        mode.track(tensor)
    dtype = _precision_dtype(precision)
    emulated_state: list[torch.Tensor] | None = None  # the optimizer's state when its step cannot run here
    with mode:
        for step in range(steps):
            mode.reset_peak()
            info = StepInfo(step, 1000, 0)
            with GpuLikeOps(dtype):
                loss = method.training_step(batch, info)["loss"]
            loss.backward()
            del loss
            if emulated_state is None:
                try:
                    optimizer.step()
                except Exception:  # noqa: BLE001 - e.g. LARS's trust ratio needs values: allocate its state instead
                    optimizer.state.clear()  # whatever the failed step allocated
                    emulated_state = [torch.empty(shape, dtype=dt, device=device)
                                      for shape, dt in optimizer_state_shapes(method, cfg.optim)]
            optimizer.zero_grad(set_to_none=True)
            method.on_after_optimizer_step(info)
    state = emulated_state if emulated_state is not None else [
        value for per_param in optimizer.state.values() for value in per_param.values() if torch.is_tensor(value)]
    return {"peak": mode.peak, "persistent": mode.live, "params": params, "buffers": buffers, "grads": grads,
            "optimizer": _bytes(state)}


def _simulate(cfg: Any, batch_size: int, precision: str) -> tuple[dict[str, Any], float, str]:
    """``(simulation, peak bytes at batch_size, how)``: on meta at the batch, else on CPU at batches 2 and 3 with
    the peak extrapolated linearly (at the batch itself when it is at most 3)."""
    try:
        sim = simulate_step_memory(cfg, batch_size, precision, "meta")
        return sim, sim["peak"], "simulated on the meta device at the recipe's batch"
    except Exception as error:  # noqa: BLE001 - ops without a meta kernel, .item(): simulate on CPU, tiny batches
        # batches 2 and 3: a BatchNorm in training mode refuses a batch of 1 (e.g. L3's fusion head)
        low, high = (batch_size, batch_size) if batch_size <= 3 else (2, 3)
        one = simulate_step_memory(cfg, low, precision, "cpu")
        sim = simulate_step_memory(cfg, high, precision, "cpu") if high != low else one
        per_item = {k: (sim[k] - one[k]) / max(1, high - low) for k in ("peak", "persistent")}
        peak = one["peak"] + (batch_size - low) * per_item["peak"]
        sim = {**sim, "persistent": one["persistent"] + (batch_size - low) * per_item["persistent"]}
        where = f"at batch {batch_size}" if low == high else f"at batches {low} and {high} and extrapolated linearly to {batch_size}"
        return sim, peak, f"simulated on CPU {where} (the method cannot run on meta: {_first_line(error)})"


def estimate_peak_memory(cfg: Any, batch_size: int, precision: str, world_size: int = 1) -> dict[str, Any]:
    """The simulated peak per process (see the module docstring), in MiB, with how it was obtained. Where the
    autocast emulation does not run (e.g. an RNN's dtype check, which only real autocast passes) the step is
    simulated in fp32 instead, an upper bound, and ``how`` says so."""
    try:
        sim, peak, how = _simulate(cfg, batch_size, precision)
        how = f"estimated: {how}"
    except Exception as error:  # noqa: BLE001
        if precision not in LOW_PRECISION:
            raise
        sim, peak, how = _simulate(cfg, batch_size, "32-true")
        how = f"estimated in fp32, an upper bound (the {precision} emulation failed: {_first_line(error)}): {how}"
    ddp = sim["grads"] if world_size > 1 else 0  # DDP's gradient buckets
    activations = max(0, peak - sim["persistent"] - sim["grads"])
    return {"peak_mib": (peak + ddp) / MIB, "how": how, "params_mib": sim["params"] / MIB,
            "buffers_mib": sim["buffers"] / MIB, "grads_mib": sim["grads"] / MIB,
            "optimizer_mib": sim["optimizer"] / MIB, "activations_mib": activations / MIB, "ddp_buckets_mib": ddp / MIB,
            "precision": precision}


def measure_cuda_peak(cfg: Any, batch_size: int, precision: str, world_size: int = 1, steps: int = 2) -> dict[str, Any]:
    """Peak ``torch.cuda.max_memory_allocated`` over ``steps`` real training steps on the current GPU at
    ``batch_size``, with the recipe's ``channels_last`` and ``activation_checkpointing`` (not ``compile``), in MiB;
    with more than one process DDP's gradient buckets are added, as in the estimate."""
    torch.cuda.empty_cache()
    base = torch.cuda.memory_allocated()
    torch.cuda.reset_peak_memory_stats()
    torch.manual_seed(int(cfg.train.seed))
    method = build_method(cfg, "cuda")
    apply_runtime_options(method, OmegaConf.create({"compile": False, "channels_last": cfg.train.channels_last,
                                                    "activation_checkpointing": cfg.train.activation_checkpointing}))
    batch = method_batch(cfg, method, batch_size, "cuda", int(cfg.train.seed))
    optimizer = build_optimizer(method, cfg.optim)
    grads = _bytes(p for p in method.parameters() if p.requires_grad)
    dtype = _precision_dtype(precision)
    for step in range(steps):
        info = StepInfo(step, 1000, 0)
        with torch.autocast("cuda", dtype=dtype or torch.float32, enabled=dtype is not None):
            loss = method.training_step(batch, info)["loss"]
        loss.backward()
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)
        method.on_after_optimizer_step(info)
    torch.cuda.synchronize()
    ddp = grads if world_size > 1 else 0
    peak = (torch.cuda.max_memory_allocated() - base + ddp) / MIB
    del method, batch, optimizer
    torch.cuda.empty_cache()
    return {"peak_mib": peak, "ddp_buckets_mib": ddp / MIB, "precision": precision,
            "how": f"measured: torch.cuda.max_memory_allocated over {steps} steps on {torch.cuda.get_device_name(0)} "
                   f"at the recipe's batch" + (" (+ DDP gradient buckets)" if ddp else "")}


def _first_line(error: BaseException) -> str:
    text = str(error).strip().splitlines()
    return (text[0] if text else type(error).__name__)[:120]


def _cpu_peak_child(recipe: str, overrides: list[str], steps: int = 2) -> dict[str, Any]:
    """In a fresh process: a real CPU training run of ``recipe`` for ``steps`` steps; the peak of live tensor bytes
    from the profiler's allocator events (CPU), counted from before the model is built."""
    torch.set_num_threads(1)
    cfg = load_pretrain_config(recipe, overrides, hardware=False)
    shapes = build_method(cfg, "meta")
    batch = method_batch(cfg, shapes, int(cfg.train.batch_size), "cpu", int(cfg.train.seed))
    torch.manual_seed(int(cfg.train.seed))
    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        method = build_method(cfg, "cpu")
        optimizer = build_optimizer(method, cfg.optim)
        for step in range(steps):
            info = StepInfo(step, 1000, 0)
            method.training_step(batch, info)["loss"].backward()
            optimizer.step()
            optimizer.zero_grad(set_to_none=True)
            method.on_after_optimizer_step(info)
    events = sorted((e for e in prof.profiler.kineto_results.events() if e.name() == "[memory]"),
                    key=lambda e: e.start_ns())
    live = peak = 0
    for event in events:
        live += event.nbytes()
        peak = max(peak, live)
    return {"peak_mib": peak / MIB, "end_mib": live / MIB}


def measure_cpu_peak(recipe: str, overrides: list[str], steps: int = 2) -> dict[str, Any]:
    """``{"peak_mib", "end_mib"}`` of a real CPU run of ``recipe`` (``_cpu_peak_child`` in a fresh process), or
    ``{"error": ...}``."""
    return run_in_fresh_process("videossl.plan.memory", "_cpu_peak_child", str(recipe), list(overrides), steps)


if __name__ == "__main__":
    import sys

    from videossl.bench.measure import main_of

    sys.exit(main_of({"_cpu_peak_child": _cpu_peak_child}, sys.argv[1:]))
