"""Which directory a run writes to, and whether a checkpoint may be resumed under the requested config.

* A new run without ``train.run_dir`` gets ``runs/<method>-<YYYYmmdd-HHMMSS>-<8 random hex>``: runs started in
  the same second (a job array) never share a directory.
* ``train.resume=auto`` without ``train.run_dir`` continues the newest ``runs/<method>-*`` run whose
  ``config.yaml`` has the same settings as the requested config (runtime-only keys and
  ``train.resume_allow_changes`` aside), never a run of another recipe.
* A resume compares the checkpoint's stored config with the requested one *before anything is written*: the
  method and backbone must match (``STRUCTURAL_KEYS``); any other difference is refused unless the key is listed
  in ``train.resume_allow_changes``, and allowed differences are logged. Keys in ``RUNTIME_KEYS`` (paths,
  workers, logging, GPU run-time options) never matter.
"""
from __future__ import annotations

import logging
import os
from datetime import datetime
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from ..errors import UserError

log = logging.getLogger("videossl.train")

# settings that change how a run executes, not what it computes: they may differ on resume without asking
RUNTIME_KEYS = frozenset({
    "train.resume", "train.run_dir", "train.resume_allow_changes", "train.progress", "train.plots",
    "train.log_every", "train.ckpt_every", "train.compile", "train.channels_last", "train.activation_checkpointing",
    "train.ddp_timeout_s", "data.num_workers", "data.prefetch_factor", "data.persistent_workers",
    "data.pin_memory", "data.decode_timeout_s"})
RUNTIME_PREFIXES = ("reference.",)  # provenance only
# settings that define the saved tensors: a checkpoint of another method or backbone cannot be resumed at all
STRUCTURAL_KEYS = ("method.name", "backbone.name", "optim.name")
STRUCTURAL_PREFIXES = ("backbone.kwargs.",)


def new_run_dir(method: str) -> Path:
    """``runs/<method>-<timestamp>-<random>``; the suffix comes from ``os.urandom``, not the seeded torch RNG."""
    return Path("runs") / f"{method}-{datetime.now():%Y%m%d-%H%M%S}-{os.urandom(4).hex()}"


def flat_config(cfg: DictConfig | dict[str, Any] | str) -> dict[str, Any]:
    """``{"optim.lr": 0.001, ...}`` from a config, a plain dict or YAML text (lists stay values)."""
    if isinstance(cfg, str):
        cfg = OmegaConf.create(cfg)
    tree = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else cfg
    flat: dict[str, Any] = {}

    def walk(node: Any, prefix: str) -> None:
        if isinstance(node, dict) and node:
            for key, value in node.items():
                walk(value, f"{prefix}{key}.")
        else:
            flat[prefix[:-1]] = node

    walk(tree, "")
    return flat


def _is_runtime(key: str) -> bool:
    return key in RUNTIME_KEYS or key.startswith(RUNTIME_PREFIXES)


def _is_structural(key: str) -> bool:
    return key in STRUCTURAL_KEYS or key.startswith(STRUCTURAL_PREFIXES)


def config_differences(stored: dict[str, Any], requested: dict[str, Any]) -> list[tuple[str, Any, Any]]:
    """``(key, stored value, requested value)`` for every setting that differs, runtime-only keys aside; a key
    missing on one side (a config written by an older videossl) counts only when the other side is not its
    default, which we cannot know here, so missing keys are skipped."""
    keys = sorted(set(stored) & set(requested))
    return [(k, stored[k], requested[k]) for k in keys if not _is_runtime(k) and stored[k] != requested[k]]


def _fmt(differences: list[tuple[str, Any, Any]], limit: int = 6) -> str:
    shown = ", ".join(f"{k} {old!r} -> {new!r}" for k, old, new in differences[:limit])
    return shown + (f" and {len(differences) - limit} more" if len(differences) > limit else "")


def check_resume(checkpoint: dict[str, Any], cfg: DictConfig, path: Path) -> list[tuple[str, Any, Any]]:
    """Refuse (``UserError``, one line naming the differing keys) a resume whose checkpoint was trained with other
    settings than ``cfg``; return the allowed differences (``train.resume_allow_changes``), already logged."""
    if checkpoint.get("format", "videossl-checkpoint-v1") != "videossl-checkpoint-v1":
        raise UserError(f"train.resume: {path} is a {checkpoint.get('format')!r} file, not a videossl checkpoint")
    if not isinstance(checkpoint.get("config"), str) or "step" not in checkpoint:
        raise UserError(f"train.resume: {path} is not a videossl training checkpoint (no stored config or step); "
                        f"pass the last.ckpt of a run")
    stored, requested = flat_config(checkpoint["config"]), flat_config(cfg)
    differences = config_differences(stored, requested)
    structural = [d for d in differences if _is_structural(d[0])]
    if structural:
        raise UserError(f"train.resume: {path} was trained with other {', '.join(d[0] for d in structural)} "
                        f"({_fmt(structural)}); a checkpoint resumes only under its own method, backbone and "
                        f"optimizer: start a new run (or fine-tune its encoder.pt)")
    allowed = set(cfg.train.resume_allow_changes)
    unknown = sorted(k for k in allowed if k not in requested)
    if unknown:
        raise UserError(f"train.resume_allow_changes: unknown key(s) {', '.join(unknown)}; list full keys such as "
                        f"optim.lr or train.batch_size")
    refused = [d for d in differences if d[0] not in allowed]
    if refused:
        keys = ", ".join(d[0] for d in refused)
        raise UserError(f"train.resume: the requested config differs from the one {path} was trained with: "
                        f"{_fmt(refused)}; resume with the same settings, or allow the change with "
                        f"train.resume_allow_changes=[{keys}]")
    for key, old, new in differences:
        log.warning("resume: %s changed from %r to %r (train.resume_allow_changes)", key, old, new)
    return differences


def _same_run_settings(run_dir: Path, cfg: DictConfig) -> bool:
    """True when ``run_dir/config.yaml`` has the settings of ``cfg`` (runtime-only and allowed keys aside)."""
    try:
        stored = flat_config((run_dir / "config.yaml").read_text())
    except Exception:  # unreadable or missing: not a candidate
        return False
    allowed = set(cfg.train.resume_allow_changes)
    return not [d for d in config_differences(stored, flat_config(cfg)) if d[0] not in allowed]


def resolve_run_dir(cfg: DictConfig) -> tuple[Path, Path | None]:
    """Return (run_dir, checkpoint to resume from or None) following ``train.run_dir`` and ``train.resume``."""
    resume, method = cfg.train.resume, cfg.method.name
    if cfg.train.run_dir:
        run_dir = Path(cfg.train.run_dir)
    elif resume == "auto":
        candidates = sorted(Path("runs").glob(f"{method}-*/last.ckpt"), key=lambda p: p.stat().st_mtime, reverse=True)
        matching = [c.parent for c in candidates if _same_run_settings(c.parent, cfg)]
        if candidates and not matching:
            log.info("train.resume=auto: %d earlier %s run(s) in runs/ have other settings; starting a new run",
                     len(candidates), method)
        run_dir = matching[0] if matching else new_run_dir(method)
    else:
        run_dir = new_run_dir(method)
    if resume == "auto":
        ckpt = run_dir / "last.ckpt"
        return run_dir, ckpt if ckpt.is_file() else None
    if resume:
        ckpt = Path(resume)
        if not ckpt.is_file():
            raise UserError(f"train.resume: checkpoint not found: {ckpt}")
        return (run_dir if cfg.train.run_dir else ckpt.parent), ckpt
    return run_dir, None  # the trainer refuses it if it already holds a checkpoint (checked under the lock)
