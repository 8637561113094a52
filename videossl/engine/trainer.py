"""The pretraining loop: one function you can read top to bottom.

forward -> loss -> backward -> clip -> step -> EMA (method hook) -> schedules -> log -> checkpoint, on Lightning
Fabric for devices, precision (bf16 autocast on GPU), DDP and multi-node launch.
"""
from __future__ import annotations

import logging
import time
import types
from datetime import datetime
from pathlib import Path
from typing import Any

import torch
from omegaconf import DictConfig

from ..backbones import save_encoder
from ..config import to_yaml
from ..data.bad_files import report_bad_files
from ..data.build import build_dataset
from ..data.loader import build_train_loader
from ..errors import UserError
from ..methods import METHODS, StepInfo
from ..files import RunDirLock, make_dir, write_text
from .checkpoint import load_checkpoint, rng_state, save_checkpoint, set_rng_state
from .monitor import COLLAPSE_STD, collapse_stats
from .optim import apply_schedules, build_optimizer
from .run_dir import check_resume, resolve_run_dir
from .run_logger import RunLogger, plot_metrics
from ..transforms.video import VIDEO_MEAN, VIDEO_STD

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
    from datetime import timedelta

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


def _pretrain_in(cfg: DictConfig, fabric: Any, run_dir: Path, resumed: tuple[Path, dict[str, Any]] | None) -> Path:
    """The run itself, in a locked and checked ``run_dir``."""
    tc = cfg.train
    is_main = fabric.global_rank == 0
    fabric.seed_everything(tc.seed)  # identical initial weights on every process

    # --- model, data, optimizer ---
    method = METHODS[cfg.method.name](cfg)
    method = sync_batchnorm(method, bool(tc.sync_batchnorm), fabric.world_size, fabric.device.type)
    apply_runtime_options(method, tc)  # train.compile / channels_last / activation_checkpointing
    optimizer = build_optimizer(method, cfg.optim)  # before the data: an optim.* mistake fails in seconds
    views = method.views()
    bad_file_log = run_dir / "bad_files.log"  # every rank and worker appends the files it skipped
    if is_main and resumed is None:
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

    # --- resume ---
    step, epoch, batch_in_epoch = 0, 0, 0
    if resumed is not None:
        resume_from, ckpt = resumed
        restore_training_state(method, optimizer, ckpt, resume_from)
        step, epoch, batch_in_epoch = ckpt["step"], ckpt["epoch"], ckpt["batch_in_epoch"]
        set_rng_state(ckpt["rng"])
        fabric.print(f"resumed from {resume_from} at step {step}/{total_steps}")

    def checkpoint() -> None:
        if not _state_finite(fabric, method):  # never replace a good checkpoint with NaN/Inf weights or buffers
            log.warning("not writing a checkpoint at step %d: weights or buffers are not finite; keeping %s",
                        step, run_dir / "last.ckpt")
            return
        state = {"model": method.state_dict(), "optimizer": optimizer.state_dict(), "step": step, "epoch": epoch,
                 "batch_in_epoch": batch_in_epoch, "rng": rng_state(), "config": to_yaml(cfg),
                 "total_steps": total_steps, **checkpoint_label(cfg, fabric.world_size)}
        if is_main:
            save_checkpoint(state, run_dir / "last.ckpt")
        with torch.random.fork_rng(devices=[]):  # a method's save path must not shift the training RNG
            if is_main:
                _write_encoders(method, run_dir, cfg)
        fabric.barrier()

    logger = RunLogger(run_dir, resume_step=step) if is_main else None  # drops rows logged after the checkpoint
    bar = None
    if is_main and tc.progress:
        from tqdm.auto import tqdm

        bar = tqdm(total=total_steps, initial=step, desc=f"pretrain {cfg.method.name}", unit="step", dynamic_ncols=True)

    # --- the loop ---
    bad_steps = 0
    window: dict[str, float] = {"data": 0.0, "total": 0.0, "clips": 0.0}
    model.train()
    while step < total_steps:
        if batch_in_epoch >= len(sampler):
            epoch, batch_in_epoch = epoch + 1, 0
        sampler.set_epoch(epoch, start_batch=batch_in_epoch)
        tick = time.perf_counter()
        for batch in loader:
            window["data"] += time.perf_counter() - tick
            batch = fabric.to_device(batch)
            if views.device_transforms:  # data.gpu_augment: per-view batched augmentation on the device
                batch["video"] = [aug(v) for aug, v in zip(views.device_transforms, batch["video"])]
            info = StepInfo(step, total_steps, epoch)
            sched = apply_schedules(optimizer, cfg.optim, step, total_steps, steps_per_epoch)
            batch_in_epoch += 1
            last_micro = batch_in_epoch % accumulate == 0

            with fabric.no_backward_sync(model, enabled=not last_micro):
                out = model.training_step(batch, info)  # forward + loss
                loss = out["loss"]
                finite = _all_finite(fabric, loss)
                if finite:
                    fabric.backward(loss / accumulate)  # backward
            if not finite:
                bad_steps += 1
                optimizer.zero_grad(set_to_none=True)
                log.warning("non-finite loss at step %d (%d in a row): step skipped", step, bad_steps)
                if bad_steps >= MAX_BAD_STEPS:
                    # Skipped steps never touched the weights (only BN statistics move in their forwards), so when
                    # everything is still finite this is the state before the failure; checkpoint() keeps the old
                    # file otherwise.
                    checkpoint()
                    where = (f"the last good checkpoint is {run_dir / 'last.ckpt'}" if (run_dir / "last.ckpt").is_file()
                             else "no checkpoint was written before the failure")
                    raise UserError(f"{bad_steps} non-finite losses in a row at step {step}: stopping; {where} "
                                    f"(lower optim.lr or enable optim.clip_grad)")
                tick = time.perf_counter()
                continue
            if not last_micro:
                tick = time.perf_counter()
                continue
            bad_steps = 0
            if cfg.optim.clip_grad > 0:
                fabric.clip_gradients(model, optimizer, max_norm=cfg.optim.clip_grad)  # clip
            optimizer.step()  # step
            optimizer.zero_grad(set_to_none=True)
            method.on_after_optimizer_step(info)  # EMA teachers, queues
            step += 1
            window["clips"] += _batch_clips(batch) * fabric.world_size * accumulate
            window["total"] += time.perf_counter() - tick

            if is_main and (step % tc.log_every == 0 or step == total_steps):  # log
                metrics = {"loss": loss.detach().float().item(), "epoch": epoch, **sched}
                metrics.update({k: v.detach().float().item() for k, v in out.items()
                                if k not in ("loss", "embedding") and torch.is_tensor(v) and v.numel() == 1})
                if "embedding" in out:
                    metrics.update(collapse_stats(out["embedding"]))
                    if metrics["emb_std"] < COLLAPSE_STD:
                        log.warning("embeddings are collapsing at step %d: std %.4f (healthy ~1)", step, metrics["emb_std"])
                if window["total"] > 0:
                    metrics["clips_per_s"] = window["clips"] / window["total"]
                    metrics["data_wait"] = window["data"] / window["total"]
                window = {"data": 0.0, "total": 0.0, "clips": 0.0}
                logger.log(step, metrics)
                if bar is not None:
                    bar.set_postfix(loss=f"{metrics['loss']:.4f}", lr=f"{sched['lr']:.2e}")
            if bar is not None:
                bar.update(1)
            if tc.ckpt_every > 0 and step % tc.ckpt_every == 0:  # checkpoint
                checkpoint()
            if step >= total_steps:
                break
            tick = time.perf_counter()
        else:
            epoch, batch_in_epoch = epoch + 1, 0
            checkpoint()
    checkpoint()
    if bar is not None:
        bar.close()
    if is_main:
        logger.close()
        if tc.plots:
            plot_metrics(run_dir)
        summary = report_bad_files(bad_file_log, run_dir)  # run_dir/bad_files.csv: path, reason, count
        if summary:
            log.warning(summary)
        fabric.print(f"run directory: {run_dir}")
    return run_dir


def _write_encoders(method: Any, run_dir: Path, cfg: DictConfig) -> None:
    """``encoder.pt`` (with the training clip) and one ``encoder_<suffix>.pt`` per extra encoder (audio towers...)."""
    name, kwargs = method.encoder_spec()
    save_encoder(run_dir / "encoder.pt", method.backbone, name, kwargs, clip=training_clip(cfg))
    for suffix, (module, extra_name, extra_kwargs) in method.extra_encoders().items():
        save_encoder(run_dir / f"encoder_{suffix}.pt", module, extra_name, extra_kwargs)


def checkpoint_label(cfg: DictConfig, world_size: int) -> dict[str, Any]:
    """What a checkpoint says about itself besides its config (``videossl info``-style fields)."""
    from .. import __version__

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
    from ..backbones.base import Backbone
    from ..backbones.residual import ResidualInput

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
        from ..backbones.video_vit import VideoTransformer

        encoder = getattr(method.backbone, "inner", method.backbone)
        if isinstance(encoder, VideoTransformer):
            encoder._block_forward = types.MethodType(_checkpointed_block_forward, encoder)
        else:
            log.warning("train.activation_checkpointing: only video transformers support it, not %s; skipped",
                        type(encoder).__name__)


def _checkpointed_block_forward(self: Any, block: torch.nn.Module, h: torch.Tensor, grid: Any,
                                masked: bool) -> torch.Tensor:
    """A ViT block whose activations are recomputed in backward (``torch.utils.checkpoint``) when training."""
    forward = type(self)._block_forward
    if self.training and torch.is_grad_enabled():
        from torch.utils.checkpoint import checkpoint

        return checkpoint(forward, self, block, h, grid, masked, use_reentrant=False)
    return forward(self, block, h, grid, masked)


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
