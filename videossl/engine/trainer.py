"""The pretraining loop: one function you can read top to bottom.

forward -> loss -> backward -> clip -> step -> EMA (method hook) -> schedules -> log -> checkpoint, on Lightning
Fabric for devices, precision (bf16 autocast on GPU), DDP and multi-node launch.
"""
from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig
from tqdm.auto import tqdm

from .. import __version__
from ..backbones import save_encoder
from ..backbones.base import Backbone
from ..backbones.residual import ResidualInput
from ..backbones.video_vit import VideoTransformer
from ..config import to_yaml
from ..data.bad_files import report_bad_files
from ..data.build import build_dataset
from ..data.loader import build_train_loader
from ..errors import UserError
from ..files import RunDirLock, make_dir, write_text
from ..methods import StepInfo, build_method
from ..transforms.video import VIDEO_MEAN, VIDEO_STD
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .monitor import COLLAPSE_STD, collapse_stats
from .optim import apply_schedules, build_optimizer
from .run_dir import check_resume, resolve_run_dir
from .run_logger import RunLogger, plot_metrics

log = logging.getLogger("videossl.train")

MAX_BAD_STEPS = 5  # consecutive non-finite losses before the run stops


def resolve_precision(train_cfg: DictConfig) -> str:
    if train_cfg.precision != "auto":
        return train_cfg.precision
    wants_gpu = train_cfg.accelerator in ("auto", "cuda", "gpu") and torch.cuda.is_available()
    return "bf16-mixed" if wants_gpu else "32-true"


def resolve_strategy(train_cfg: DictConfig) -> Any:
    """``train.strategy``; ``ddp`` becomes a ``DDPStrategy`` whose collectives time out after ``train.ddp_timeout_s``,
    so a process whose peer died or hangs exits with an error instead of waiting forever."""
    if train_cfg.strategy != "ddp":
        return train_cfg.strategy
    from lightning.fabric.strategies import DDPStrategy

    return DDPStrategy(timeout=timedelta(seconds=train_cfg.ddp_timeout_s))


def training_clip(cfg: DictConfig) -> dict[str, Any]:
    """The clip geometry and normalisation of ``cfg.data``, recorded in ``encoder.pt`` for evaluation."""
    d = cfg.data
    return {"num_frames": int(d.num_frames), "frame_stride": int(d.frame_stride), "crop_size": int(d.crop_size),
            "short_side": int(d.short_side), "mean": list(VIDEO_MEAN), "std": list(VIDEO_STD)}


def pretrain(cfg: DictConfig) -> Path:
    """Pretrain ``cfg.method`` on ``cfg.data`` and return the run directory."""
    from lightning.fabric import Fabric

    tc = cfg.train
    fabric = Fabric(accelerator=tc.accelerator, devices=tc.devices, num_nodes=tc.num_nodes,
                    strategy=resolve_strategy(tc), precision=resolve_precision(tc))
    fabric.launch()
    run_dir, resumed, lock = open_run(cfg, fabric)
    try:
        return _pretrain_in(cfg, fabric, run_dir, resumed)
    finally:
        if lock is not None:
            lock.release()


def open_run(cfg: DictConfig, fabric: Any) -> tuple[Path, tuple[Path, dict[str, Any]] | None, RunDirLock | None]:
    """Pick the run directory, lock it (rank 0: one live run per directory), load and check the checkpoint to
    resume, and only then write ``config.yaml``. Returns (run_dir, (checkpoint path, checkpoint) or None, lock).
    Every refusal is a ``UserError`` raised on every process, before any file of the run is touched."""
    outcome: dict[str, Any] = {"run_dir": "", "resume": "", "error": ""}
    lock = None
    if fabric.global_rank == 0:
        try:
            run_dir, resume_from = resolve_run_dir(cfg)
            make_dir(run_dir, "run directory")
            lock = RunDirLock(run_dir).acquire()
            if resume_from is None and (run_dir / "last.ckpt").is_file():  # another run got there first
                raise UserError(f"train.run_dir: {run_dir} already holds a run (last.ckpt); continue it with "
                                f"train.resume=auto or choose another train.run_dir")
            outcome.update(run_dir=str(run_dir), resume=str(resume_from or ""))
        except UserError as e:
            outcome["error"] = str(e)
    outcome = fabric.broadcast(outcome)  # the same directory and verdict on every process
    try:
        if outcome["error"]:
            raise UserError(outcome["error"])
        run_dir, resumed = Path(outcome["run_dir"]), None
        if outcome["resume"]:
            path = Path(outcome["resume"])
            checkpoint = load_checkpoint(path)
            check_resume(checkpoint, cfg, path)
            resumed = (path, checkpoint)
        if fabric.global_rank == 0:
            write_text(run_dir / "config.yaml", to_yaml(cfg))  # describes last.ckpt from here on
    except BaseException:
        if lock is not None:
            lock.release()
        raise
    return run_dir, resumed, lock


@dataclass
class Run:
    """Everything one pretraining run carries between its steps (rank-local)."""

    cfg: DictConfig
    fabric: Any
    run_dir: Path
    method: Any  # the Method (its own modules; ``model`` is Fabric's wrapper of it)
    model: Any
    optimizer: Any
    views: Any
    loader: Any
    sampler: Any
    bad_file_log: Path
    steps_per_epoch: int
    total_steps: int
    accumulate: int
    step: int = 0
    epoch: int = 0
    batch_in_epoch: int = 0
    bad_steps: int = 0  # consecutive non-finite losses
    logger: RunLogger | None = None
    bar: Any = None
    window: dict[str, float] = field(default_factory=lambda: {"data": 0.0, "total": 0.0, "clips": 0.0})
    tick: float = 0.0

    @property
    def is_main(self) -> bool:
        return self.fabric.global_rank == 0


def _pretrain_in(cfg: DictConfig, fabric: Any, run_dir: Path, resumed: tuple[Path, dict[str, Any]] | None) -> Path:
    """The run itself, in a locked and checked ``run_dir``: build, loop over the data, finish."""
    run = build_run(cfg, fabric, run_dir, resumed)
    run.model.train()
    while run.step < run.total_steps:
        if run.batch_in_epoch >= len(run.sampler):
            run.epoch, run.batch_in_epoch = run.epoch + 1, 0
        run.sampler.set_epoch(run.epoch, start_batch=run.batch_in_epoch)
        run.tick = time.perf_counter()
        for batch in run.loader:
            run.window["data"] += time.perf_counter() - run.tick
            result = train_step(run, batch)  # None: a micro-batch of an accumulation, or a skipped step
            if result is not None:
                log_step(run, *result)
                if run.cfg.train.ckpt_every > 0 and run.step % run.cfg.train.ckpt_every == 0:
                    write_checkpoint(run)
                if run.step >= run.total_steps:
                    break
            run.tick = time.perf_counter()
        else:
            run.epoch, run.batch_in_epoch = run.epoch + 1, 0
            write_checkpoint(run)
    write_checkpoint(run)
    finish_run(run)
    return run_dir


def build_run(cfg: DictConfig, fabric: Any, run_dir: Path, resumed: tuple[Path, dict[str, Any]] | None) -> Run:
    """Model, optimizer, data and schedule length; the checkpoint's state restored when resuming."""
    tc = cfg.train
    fabric.seed_everything(tc.seed)  # identical initial weights on every process
    method = build_method(cfg)  # its view names checked here, not at the first batch
    method = sync_batchnorm(method, bool(tc.sync_batchnorm), fabric.world_size, fabric.device.type)
    apply_runtime_options(method, tc)  # train.compile / channels_last / activation_checkpointing
    optimizer = build_optimizer(method, cfg.optim)  # before the data: an optim.* mistake fails in seconds
    views = method.views()
    bad_file_log = run_dir / "bad_files.log"  # every rank and worker appends the files it skipped
    if fabric.global_rank == 0 and resumed is None:
        bad_file_log.unlink(missing_ok=True)  # left by a run killed before its first checkpoint
    dataset = build_dataset(cfg.data, views, split=cfg.data.split, seed=tc.seed, bad_file_log=str(bad_file_log))
    loader, sampler = build_train_loader(
        dataset, tc.batch_size, seed=tc.seed, rank=fabric.global_rank, world_size=fabric.world_size,
        num_workers=cfg.data.num_workers, prefetch_factor=cfg.data.prefetch_factor,
        persistent_workers=cfg.data.persistent_workers,
        pin_memory=cfg.data.pin_memory and fabric.device.type == "cuda")
    model, optimizer = fabric.setup(method, optimizer)
    model.mark_forward_method("training_step")  # runs through DDP's forward (gradient sync) and autocast

    accumulate = max(1, cfg.optim.accumulate)
    steps_per_epoch = len(sampler) // accumulate
    if steps_per_epoch == 0:
        raise UserError(f"data: {len(dataset)} samples give no optimizer step at batch {tc.batch_size} x "
                        f"accumulate {accumulate} x {fabric.world_size} processes")
    total_steps = steps_per_epoch * tc.epochs
    if tc.max_steps > 0:
        total_steps = min(total_steps, tc.max_steps)
    run = Run(cfg, fabric, run_dir, method, model, optimizer, views, loader, sampler, bad_file_log,
              steps_per_epoch, total_steps, accumulate)
    if resumed is not None:
        resume_from, ckpt = resumed
        restore_training_state(method, optimizer, ckpt, resume_from)
        run.step, run.epoch, run.batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        set_rng_state(ckpt["rng"])
        fabric.print(f"resumed from {resume_from} at step {run.step}/{total_steps}")
    if run.is_main:
        run.logger = RunLogger(run_dir, resume_step=run.step)  # drops rows logged after the checkpoint
        if tc.progress:
            run.bar = tqdm(total=total_steps, initial=run.step, desc=f"pretrain {cfg.method.name}", unit="step",
                           dynamic_ncols=True)
    return run


def train_step(run: Run, batch: dict[str, Any]) -> tuple[dict[str, Any], dict[str, float]] | None:
    """forward -> loss -> backward (-> clip -> optimizer step -> EMA / queue hook on the last micro-batch).
    Returns (the method's outputs, the schedules' values) after an optimizer step, None otherwise."""
    fabric, optimizer, cfg = run.fabric, run.optimizer, run.cfg
    batch = fabric.to_device(batch)
    if run.views.device_transforms:  # data.gpu_augment: per-view batched augmentation on the device
        batch["video"] = [aug(v) for aug, v in zip(run.views.device_transforms, batch["video"])]
    info = StepInfo(run.step, run.total_steps, run.epoch)
    sched = apply_schedules(optimizer, cfg.optim, run.step, run.total_steps, run.steps_per_epoch)
    run.batch_in_epoch += 1
    last_micro = run.batch_in_epoch % run.accumulate == 0
    with fabric.no_backward_sync(run.model, enabled=not last_micro):
        out = run.model.training_step(batch, info)  # forward + loss
        finite = _all_finite(fabric, out["loss"])
        if finite:
            fabric.backward(out["loss"] / run.accumulate)  # backward
    if not finite:
        skip_non_finite_step(run)
        return None
    if not last_micro:
        return None
    run.bad_steps = 0
    if cfg.optim.clip_grad > 0:
        fabric.clip_gradients(run.model, optimizer, max_norm=cfg.optim.clip_grad)  # clip
    optimizer.step()  # step
    optimizer.zero_grad(set_to_none=True)
    run.method.on_after_optimizer_step(info)  # EMA teachers, queues
    run.step += 1
    run.window["clips"] += _batch_clips(batch) * fabric.world_size * run.accumulate
    run.window["total"] += time.perf_counter() - run.tick
    return out, sched


def skip_non_finite_step(run: Run) -> None:
    """A NaN/Inf loss (on any process): drop the gradients; ``MAX_BAD_STEPS`` in a row stop the run. Skipped
    steps never touched the weights (only BN statistics move in their forwards), so when everything is still
    finite the checkpoint written here is the state before the failure; ``write_checkpoint`` keeps the old file
    otherwise."""
    run.bad_steps += 1
    run.optimizer.zero_grad(set_to_none=True)
    log.warning("non-finite loss at step %d (%d in a row): step skipped", run.step, run.bad_steps)
    if run.bad_steps >= MAX_BAD_STEPS:
        write_checkpoint(run)
        last = run.run_dir / "last.ckpt"
        where = f"the last good checkpoint is {last}" if last.is_file() else "no checkpoint was written before the failure"
        raise UserError(f"{run.bad_steps} non-finite losses in a row at step {run.step}: stopping; {where} "
                        f"(lower optim.lr or enable optim.clip_grad)")


def log_step(run: Run, out: dict[str, Any], sched: dict[str, float]) -> None:
    """Every ``train.log_every`` steps (and the last), rank 0: loss, schedules, the method's scalars, collapse
    statistics and throughput to ``metrics.csv`` / TensorBoard; the progress bar every step."""
    if run.is_main and (run.step % run.cfg.train.log_every == 0 or run.step == run.total_steps):
        metrics = {"loss": out["loss"].detach().float().item(), "epoch": run.epoch, **sched}
        metrics.update({k: v.detach().float().item() for k, v in out.items()
                        if k not in ("loss", "embedding") and torch.is_tensor(v) and v.numel() == 1})
        if "embedding" in out:
            metrics.update(collapse_stats(out["embedding"]))
            if metrics["emb_std"] < COLLAPSE_STD:
                log.warning("embeddings are collapsing at step %d: std %.4f (healthy ~1)", run.step, metrics["emb_std"])
        if run.window["total"] > 0:
            metrics["clips_per_s"] = run.window["clips"] / run.window["total"]
            metrics["data_wait"] = run.window["data"] / run.window["total"]
        run.window = {"data": 0.0, "total": 0.0, "clips": 0.0}
        run.logger.log(run.step, metrics)
        if run.bar is not None:
            run.bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{sched['lr']:.2e}")
    if run.bar is not None:
        run.bar.update(1)


def write_checkpoint(run: Run) -> None:
    """``last.ckpt`` (model, optimizer, position, RNG, config, labels) and the encoder files, on rank 0, through
    the atomic writer; never from non-finite weights or buffers (the previous file is kept)."""
    method, fabric = run.method, run.fabric
    if not _state_finite(fabric, method):
        log.warning("not writing a checkpoint at step %d: weights or buffers are not finite; keeping %s",
                    run.step, run.run_dir / "last.ckpt")
        return
    state = {"model": method.state_dict(), "optimizer": run.optimizer.state_dict(), "step": run.step,
             "epoch": run.epoch, "batch_in_epoch": run.batch_in_epoch, "rng": rng_state(),
             "config": to_yaml(run.cfg), "total_steps": run.total_steps,
             **checkpoint_label(run.cfg, fabric.world_size)}
    if run.is_main:
        save_checkpoint(state, run.run_dir / "last.ckpt")
    with torch.random.fork_rng(devices=[]):  # a method's save path must not shift the training RNG
        if run.is_main:
            _write_encoders(method, run.run_dir, run.cfg)
    fabric.barrier()


def finish_run(run: Run) -> None:
    """Close the bar and logs, draw the plots, write ``bad_files.csv`` and name the run directory (rank 0)."""
    if run.bar is not None:
        run.bar.close()
    if run.is_main:
        run.logger.close()
        if run.cfg.train.plots:
            plot_metrics(run.run_dir)
        summary = report_bad_files(run.bad_file_log, run.run_dir)  # run_dir/bad_files.csv: path, reason, count
        if summary:
            log.warning(summary)
        run.fabric.print(f"run directory: {run.run_dir}")


def _write_encoders(method: Any, run_dir: Path, cfg: DictConfig) -> None:
    """``encoder.pt`` (with the training clip) and one ``encoder_<suffix>.pt`` per extra encoder (audio towers...)."""
    name, kwargs = method.encoder_spec()
    save_encoder(run_dir / "encoder.pt", method.backbone, name, kwargs, clip=training_clip(cfg))
    for suffix, (module, extra_name, extra_kwargs) in method.extra_encoders().items():
        save_encoder(run_dir / f"encoder_{suffix}.pt", module, extra_name, extra_kwargs)


def checkpoint_label(cfg: DictConfig, world_size: int) -> dict[str, Any]:
    """What a checkpoint says about itself besides its config (``videossl info``-style fields)."""
    return {"method": str(cfg.method.name), "backbone": str(cfg.backbone.name), "videossl_version": __version__,
            "torch_version": str(torch.__version__), "world_size": int(world_size),
            "written": datetime.now().isoformat(timespec="seconds")}


def restore_training_state(method: torch.nn.Module, optimizer: Any, ckpt: dict[str, Any], path: Path) -> None:
    """Load a checkpoint's model and optimizer state; a mismatch is one line naming the first differing keys."""
    try:
        method.load_state_dict(ckpt["model"])
    except RuntimeError as e:
        details = "; ".join(line.strip() for line in str(e).splitlines()[1:] if line.strip())
        raise UserError(f"train.resume: {path} does not fit this model: {details[:400]}") from None
    try:
        optimizer.load_state_dict(ckpt["optimizer"])
    except (ValueError, KeyError) as e:
        raise UserError(f"train.resume: the optimizer state in {path} does not fit this optimizer: {e}") from None


def sync_batchnorm(method: torch.nn.Module, enabled: bool, world_size: int, device_type: str) -> torch.nn.Module:
    """``train.sync_batchnorm``: every BatchNorm of ``method`` (encoders, projectors, EMA teachers) becomes a
    ``SyncBatchNorm`` when more than one process trains on GPUs, so the statistics are those of the global batch
    (SimCLR, Chen et al. 2020, "global BN"; BYOL; DINO's ``--use_bn_in_head``). With one process nothing changes.
    torch's SyncBatchNorm runs on GPUs only, so under CPU DDP (gloo) each process keeps its own statistics and
    this is logged."""
    if not enabled or world_size <= 1:
        return method
    if not any(isinstance(m, torch.nn.modules.batchnorm._BatchNorm) for m in method.modules()):
        return method
    if device_type == "cpu":
        log.warning("train.sync_batchnorm: torch has no SyncBatchNorm on CPU; each of the %d processes normalises "
                    "with its own batch statistics", world_size)
        return method
    return torch.nn.SyncBatchNorm.convert_sync_batchnorm(method)


def apply_runtime_options(method: torch.nn.Module, train_cfg: DictConfig) -> None:
    """The GPU-path options of ``train``: ``compile`` and ``channels_last`` go to every backbone the method owns
    (its encoder and EMA teachers; ``Backbone.set_runtime_options``), ``activation_checkpointing`` to the
    trained ViT encoder. An option a backbone cannot use is skipped with a logged reason; numbers are unchanged."""
    compile_ = bool(train_cfg.compile)
    if compile_ and not hasattr(torch, "compile"):
        log.warning("train.compile: this torch has no torch.compile; running eagerly")
        compile_ = False
    if compile_ or train_cfg.channels_last:
        backbones = [m for m in method.modules() if isinstance(m, Backbone) and not isinstance(m, ResidualInput)]
        for backbone in backbones:
            backbone.set_runtime_options(channels_last=bool(train_cfg.channels_last), compile=compile_)
        if train_cfg.channels_last and not any(b.memory_format is not None for b in backbones):
            log.info("train.channels_last: not used, the backbone has no convolutions that gain from it")
    if train_cfg.activation_checkpointing:
        encoder = getattr(method.backbone, "inner", method.backbone)
        if isinstance(encoder, VideoTransformer):
            encoder.activation_checkpointing = True
        else:
            log.warning("train.activation_checkpointing: only video transformers support it, not %s; skipped",
                        type(encoder).__name__)


def _all_finite(fabric: Any, loss: torch.Tensor) -> bool:
    """True when the loss is finite on every process (all skip together, so DDP stays in step)."""
    flag = torch.tensor(float(torch.isfinite(loss.detach()).all()), device=loss.device)
    if fabric.world_size > 1:
        flag = fabric.all_reduce(flag, reduce_op="min")
    return bool(flag.item() > 0)


def _state_finite(fabric: Any, method: torch.nn.Module) -> bool:
    """True when every floating parameter and buffer is finite on every process."""
    finite = all(bool(torch.isfinite(t).all()) for t in (*method.parameters(), *method.buffers())
                 if t.is_floating_point())
    flag = torch.tensor(float(finite), device=fabric.device)
    if fabric.world_size > 1:
        flag = fabric.all_reduce(flag, reduce_op="min")
    return bool(flag.item() > 0)


def _batch_clips(batch: dict[str, Any]) -> int:
    label = batch.get("label")
    if torch.is_tensor(label):
        return int(label.shape[0])
    return int(batch["video"][0].shape[0]) if batch.get("video") else 0
