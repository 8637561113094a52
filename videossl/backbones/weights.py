"""Weights in from local files only: torchvision, pytorchvideo and transformers checkpoints, and our own
``encoder.pt``, into any backbone (``backbone.pretrained=/path``). Nothing here reaches the network.

A library checkpoint's keys are the library model's keys; our wrappers hold that model under
``backbone.library_prefix`` (``model.``), so loading is: unwrap the file, strip wrapper prefixes
(``module.``, ``videomae.`` ...), add our prefix, drop classification-head keys, and check that every
backbone key is there with the right shape. A checkpoint with 3 input channels loads into a backbone
built with ``in_channels != 3`` (flow, grayscale) by averaging the first convolution over RGB and copying
it to every input channel, the cross-modality initialisation of TSN (Wang et al., ECCV 2016).
"""
from __future__ import annotations

import warnings
from pathlib import Path

import torch
from safetensors.torch import load_file
from torch import nn

from videossl.errors import UserError

# Containers that checkpoint files wrap their state dict in (pytorchvideo: "model_state").
_CONTAINER_KEYS = ("model_state", "state_dict", "model")
_WRAPPER_PREFIXES = ("module.", "_orig_mod.")


class WeightsError(UserError):
    """A local weights file that is missing or does not fit the backbone it is loaded into."""


def require_local_path(path: str | Path, what: str = "pretrained weights") -> Path:
    """``path`` as a ``Path``; a missing path raises ``WeightsError`` naming it (never a download)."""
    p = Path(path).expanduser()
    if not p.exists():
        raise WeightsError(f"{what}: no such file or directory: {p} (weights load from local files only)")
    return p


def read_state_dict(path: str | Path) -> tuple[dict[str, torch.Tensor], bool]:
    """Tensors of a checkpoint file or a transformers ``save_pretrained`` directory.

    Returns ``(state_dict, is_ours)``: ``is_ours`` when the file is one of our ``encoder.pt`` files, whose
    keys are already the backbone's own.
    """
    p = require_local_path(path)
    if p.is_dir():
        return _read_pretrained_dir(p), False
    if p.suffix == ".safetensors":
        return load_file(str(p)), False
    try:
        payload = torch.load(p, map_location="cpu", weights_only=True)
    except Exception as exc:  # unpicklable, truncated or not a torch file
        raise WeightsError(f"{p}: not a readable PyTorch checkpoint ({type(exc).__name__}: {exc})") from None
    if not isinstance(payload, dict):
        raise WeightsError(f"{p}: expected a dict of tensors, got {type(payload).__name__}")
    is_ours = "backbone" in payload and "state_dict" in payload
    for key in _CONTAINER_KEYS:
        if key in payload and isinstance(payload[key], dict):
            payload = payload[key]
            break
    state = {k: v for k, v in payload.items() if isinstance(v, torch.Tensor)}
    if not state:
        raise WeightsError(f"{p}: holds no tensors")
    for prefix in _WRAPPER_PREFIXES:
        if all(k.startswith(prefix) for k in state):
            state = {k[len(prefix):]: v for k, v in state.items()}
    return state, is_ours


def _read_pretrained_dir(p: Path) -> dict[str, torch.Tensor]:
    candidates = sorted(p.glob("*.safetensors")) or sorted(p.glob("pytorch_model*.bin"))
    if not candidates:
        raise WeightsError(f"{p}: directory has no *.safetensors or pytorch_model.bin (a save_pretrained folder?)")
    state: dict[str, torch.Tensor] = {}
    for file in candidates:
        if file.suffix == ".safetensors":
            state.update(load_file(str(file)))
        else:
            state.update(torch.load(file, map_location="cpu", weights_only=True))
    return state


def _read_with_transformers(backbone: nn.Module, p: Path) -> dict[str, torch.Tensor]:
    """A ``save_pretrained`` directory read by transformers itself, which renames keys between its
    versions (``encoder.layer.0.attention.attention.query`` <-> ``layers.0.attention.q_proj``)."""
    model_class = type(backbone.model)
    try:
        model = model_class.from_pretrained(str(p), local_files_only=True)
    except Exception as exc:  # wrong model type, broken config.json, missing weights file
        raise WeightsError(f"{p}: {model_class.__name__}.from_pretrained failed ({type(exc).__name__}: {exc})") from None
    return model.state_dict()


def _adapt_input_channels(ours: torch.Tensor, theirs: torch.Tensor) -> torch.Tensor | None:
    """RGB first-conv weights ``(O, 3, *k)`` -> ``(O, C, *k)`` by the RGB mean (TSN), else ``None``."""
    if ours.dim() >= 3 and theirs.dim() == ours.dim() and theirs.shape[1] == 3 and ours.shape[1] != 3:
        if theirs.shape[0] == ours.shape[0] and theirs.shape[2:] == ours.shape[2:]:
            return theirs.mean(dim=1, keepdim=True).expand_as(ours).clone()
    return None


def load_pretrained(
    backbone: nn.Module, path: str | Path, strip_prefixes: tuple[str, ...] = (), renames: dict[str, str] | None = None
) -> list[str]:
    """Load a local checkpoint into ``backbone``; returns the checkpoint keys that were left out (heads).

    ``strip_prefixes``: prefixes of the library's task models to remove first (``videomae.`` for
    ``VideoMAEForVideoClassification``); ``renames``: key fragments renamed between library versions.
    Raises ``WeightsError`` naming the file and the missing or
    mis-shaped keys.
    """
    p = require_local_path(path)
    if p.is_dir() and getattr(backbone, "library_format", "") == "transformers":
        theirs, is_ours = _read_with_transformers(backbone, p), False
    else:
        theirs, is_ours = read_state_dict(p)
    ours = backbone.state_dict()
    if not is_ours:
        prefix = getattr(backbone, "library_prefix", "")
        renamed = {}
        for key, value in theirs.items():
            for strip in strip_prefixes:
                if key.startswith(strip):
                    key = key[len(strip):]
                    break
            for old, new in (renames or {}).items():
                key = key.replace(old, new)
            renamed[prefix + key] = value
        theirs = renamed
    loaded, left_out = {}, []
    for key, value in theirs.items():
        if key not in ours:
            left_out.append(key)
            continue
        if value.shape != ours[key].shape:
            adapted = _adapt_input_channels(ours[key], value)
            if adapted is None:
                raise WeightsError(
                    f"{path}: '{key}' has shape {tuple(value.shape)}, the backbone expects {tuple(ours[key].shape)}"
                )
            value = adapted
        loaded[key] = value
    missing = [k for k in ours if k not in loaded and not _is_buffer_we_own(k)]
    if missing:
        shown = ", ".join(missing[:5]) + (f" ... ({len(missing)} in all)" if len(missing) > 5 else "")
        raise WeightsError(f"{path}: does not fit {type(backbone).__name__}; missing keys: {shown}")
    backbone.load_state_dict(loaded, strict=False)
    if left_out:
        warnings.warn(f"{path}: {len(left_out)} keys not used by the backbone (heads), e.g. {left_out[0]}")
    return left_out


def _is_buffer_we_own(key: str) -> bool:
    # BatchNorm's step counter is absent from some older checkpoints; it does not change outputs.
    return key.endswith("num_batches_tracked")
