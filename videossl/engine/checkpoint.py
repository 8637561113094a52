"""Checkpoints: written atomically (temp file + fsync + rename), read with ``weights_only=True``.

A checkpoint holds plain tensors and builtins only: model (method incl. heads and EMA teacher), optimizer,
step/epoch/batch position, RNG states and the resolved config as YAML text. A file that needs arbitrary
unpickling (e.g. a malicious pickle) is refused with a clear error instead of being executed.
"""
from __future__ import annotations

import os
import pickle
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError


class CheckpointError(UserError):
    """A checkpoint could not be written or read; the message names the file."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically: a crash or full disk mid-write leaves the previous file intact."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:
        with open(tmp, "wb") as f:
            torch.save(state, f)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        _remove_stale_temp_files(path)
    except OSError as e:
        tmp.unlink(missing_ok=True)
        raise CheckpointError(f"could not write checkpoint {path}: {e.strerror or e}; the previous checkpoint is kept") from None


def _remove_stale_temp_files(path: Path) -> None:
    """Delete ``.<name>.tmp-<pid>`` files left by writers that were killed mid-write (their pid is gone)."""
    import glob

    for tmp in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        pid = tmp.name.rsplit("-", 1)[-1]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            tmp.unlink(missing_ok=True)
        except OSError:
            pass  # the process exists (owned by someone else): leave its file alone


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a checkpoint with ``weights_only=True``; refuse anything that is not plain tensors and builtins."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"checkpoint not found: {path}")
    try:
        return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else "unsupported content"
        raise CheckpointError(f"refusing to load {path}: it is not a plain-tensor checkpoint ({first[:160]})") from None
    except (RuntimeError, EOFError, ValueError) as e:
        raise CheckpointError(f"cannot read checkpoint {path}: {str(e).splitlines()[0][:200]}") from None


def rng_state() -> dict[str, Any]:
    """Torch RNG states (CPU and CUDA) as tensors; numpy and Python RNGs are not used for training draws."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
