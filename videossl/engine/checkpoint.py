"""Checkpoints: written atomically (temp file + fsync + rename), read with ``weights_only=True``.

A checkpoint holds plain tensors and builtins only: model (method incl. heads and EMA teacher), optimizer,
step/epoch/batch position, RNG states and the resolved config as YAML text. A file that needs arbitrary
unpickling (e.g. a malicious pickle) is refused with a clear error instead of being executed.
"""
from __future__ import annotations

import pickle
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..files import WriteError, torch_save

# what a videossl training checkpoint says it is (``state["format"]``); encoder files say "videossl-encoder"
CHECKPOINT_FORMAT = "videossl-checkpoint-v1"


class CheckpointError(UserError):
    """A checkpoint could not be written or read; the message names the file."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically (``videossl.files``): a crash or full disk mid-write leaves the
    previous file intact, and a disk the user can fix (full, read-only) is one line naming the path."""
    path = Path(path)
    try:
        torch_save({"format": CHECKPOINT_FORMAT, **state}, path)
    except WriteError as e:
        raise CheckpointError(str(e).replace("could not write ", "could not write checkpoint ", 1)
                              .replace("previous file is kept", "previous checkpoint is kept")) from None


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
