"""Checkpoints: written atomically (temp file + fsync + rename), read with ``weights_only=True``.

A checkpoint holds plain tensors and builtins only: model (method incl. heads and EMA teacher), optimizer,
step/epoch/batch position, RNG states and the resolved config as YAML text. A file that needs arbitrary
unpickling (e.g. a malicious pickle) is refused with a clear error instead of being executed.
"""
from __future__ import annotations

import random
from pathlib import Path
from typing import Any

import numpy as np
import torch

from ..errors import UserError
from ..files import WriteError, torch_save
from ..loading import describe_payload, file_kind, read_torch_file, sibling_hint

# what a videossl training checkpoint says it is (``state["format"]``); encoder files say "videossl-encoder"
CHECKPOINT_FORMAT = "videossl-checkpoint-v1"


class CheckpointError(UserError):
    """A checkpoint could not be written or read; the message names the file."""


def save_checkpoint(state: dict[str, Any], path: str | Path) -> None:
    """Write ``state`` to ``path`` atomically (``videossl.files``): a crash or full disk mid-write leaves the
    previous file intact, and a disk the user can fix (full, read-only) is one line naming the path."""
    path = Path(path)
    try:
        torch_save({"format": CHECKPOINT_FORMAT, **state}, path, what="checkpoint")
    except WriteError as e:
        raise CheckpointError(str(e)) from None


def load_checkpoint(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Read a videossl training checkpoint with ``weights_only=True``.

    Anything else is a ``CheckpointError`` on one line saying what the file is: missing, empty, truncated, text,
    another format, a pickle that would run code (refused, never executed), a torch file without videossl's keys,
    or a videossl encoder file (``encoder.pt``) given where a checkpoint (``last.ckpt``) belongs
    (``videossl.loading``)."""
    path = Path(path)
    payload = read_torch_file(path, "checkpoint", error=CheckpointError, map_location=map_location)
    kind = file_kind(payload)
    if kind == "encoder":
        raise CheckpointError(f"{path}: this is a videossl encoder file, not a checkpoint; pass last.ckpt"
                              f"{sibling_hint(path, 'last.ckpt')}")
    if kind != "checkpoint":
        raise CheckpointError(f"{path}: not a videossl checkpoint (it is a torch file holding "
                              f"{describe_payload(payload)}); pass the last.ckpt of a videossl run")
    return payload


def rng_state() -> dict[str, Any]:
    """The process's global RNG states, as tensors and builtins (``weights_only``-loadable): torch CPU and CUDA
    (what methods draw from in ``training_step``), numpy's legacy global generator and Python's ``random``
    (nothing in videossl draws from these two while training, but a user's method or a library may; they cost
    10 KB). The data loader has its own generator (``data/loader.py``), so none of these moves when it starts."""
    state: dict[str, Any] = {"torch": torch.get_rng_state()}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    kind, keys, pos, has_gauss, gauss = np.random.get_state(legacy=True)
    state["numpy"] = {"kind": str(kind), "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                      "has_gauss": int(has_gauss), "gauss": float(gauss)}
    version, internal, gauss_next = random.getstate()
    state["python"] = {"version": int(version), "internal": torch.tensor(internal, dtype=torch.int64),
                       "gauss_next": gauss_next}
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    """Restore what ``rng_state`` saved; checkpoints written before numpy / Python states were saved restore torch
    (and CUDA) only."""
    torch.set_rng_state(state["torch"])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])
    if "numpy" in state:
        n = state["numpy"]
        np.random.set_state((n["kind"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    if "python" in state:
        p = state["python"]
        random.setstate((p["version"], tuple(int(x) for x in p["internal"].tolist()), p["gauss_next"]))
