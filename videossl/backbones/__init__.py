"""Backbone zoo: ``BACKBONES`` (an explicit dict) and ``create_backbone(name, **kw)``.

Every entry follows the contract in ``base.py``. ``encoder.pt`` files (backbone weights only) are written
and read by ``save_encoder`` / ``load_encoder`` and need nothing from the method classes.
"""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Callable

import torch

from .base import Backbone
from .tiny import TinyResNet3d

BACKBONES: dict[str, Callable[..., Backbone]] = {
    "tiny_r3d": TinyResNet3d,
}


def create_backbone(name: str, **kwargs: Any) -> Backbone:
    """Build a backbone by its ``BACKBONES`` name; an unknown name names the closest valid one."""
    if name not in BACKBONES:
        close = difflib.get_close_matches(name, list(BACKBONES), n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else f" (choose from: {', '.join(BACKBONES)})"
        raise KeyError(f"unknown backbone '{name}'{hint}")
    return BACKBONES[name](**kwargs)


def save_encoder(path: str | Path, backbone: Backbone, name: str, kwargs: dict[str, Any]) -> None:
    """Write ``{"backbone": name, "kwargs": kwargs, "num_features": D, "state_dict": ...}``.

    Plain tensors and builtins only, so it loads with ``torch.load(..., weights_only=True)``.
    """
    path = Path(path)
    state = {k: v.detach().cpu() for k, v in backbone.state_dict().items()}
    payload = {"backbone": name, "kwargs": dict(kwargs), "num_features": backbone.num_features, "state_dict": state}
    tmp = path.with_name(path.name + ".tmp")
    torch.save(payload, tmp)
    tmp.replace(path)


def load_encoder(path: str | Path, map_location: str = "cpu") -> Backbone:
    """Rebuild the backbone saved by ``save_encoder`` (``weights_only=True``)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"encoder file not found: {path}")
    payload = torch.load(path, map_location=map_location, weights_only=True)
    backbone = create_backbone(payload["backbone"], **payload["kwargs"])
    backbone.load_state_dict(payload["state_dict"])
    return backbone
