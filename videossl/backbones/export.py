"""Export a trained ``encoder.pt`` back to the library it came from, for use in a user's own code.

- ``torchvision``: a plain ``state_dict`` file with torchvision's keys (the classifier ``fc`` / ``head`` is
  not part of an encoder: load with ``model.load_state_dict(sd, strict=False)``).
- ``pytorchvideo``: ``{"model_state": state_dict}``, the layout of pytorchvideo's hub checkpoints (head
  keys absent as above).
- ``transformers``: a ``save_pretrained`` directory (``config.json`` + ``model.safetensors``) that
  ``VideoMAEModel`` / ``TimesformerModel`` / ``VivitModel`` / ``ViTModel.from_pretrained(dir)`` loads.

Each exported file loads back into our backbone with ``pretrained=<file or dir>`` (``weights.py``).
"""
from __future__ import annotations

from pathlib import Path

import torch

from videossl.errors import UserError

from . import load_encoder
from .base import Backbone

EXPORT_FORMATS = ("torchvision", "pytorchvideo", "transformers")


def library_state_dict(backbone: Backbone) -> dict[str, torch.Tensor]:
    """The wrapped library model's tensors under the library's own key names (our prefix removed)."""
    prefix = backbone.library_prefix
    return {k[len(prefix):]: v.detach().cpu().contiguous() for k, v in backbone.state_dict().items()
            if k.startswith(prefix)}


def _check_format(backbone: Backbone, fmt: str, source: str) -> None:
    if fmt not in EXPORT_FORMATS:
        raise UserError(f"export format '{fmt}' is not one of {', '.join(EXPORT_FORMATS)}")
    if backbone.library_format != fmt:
        have = backbone.library_format or "none (videossl's own network)"
        raise UserError(f"{source}: a {type(backbone).__name__} exports to library format {have}, not '{fmt}'")


def export_torchvision(backbone: Backbone, out: str | Path) -> Path:
    """Write a torchvision ``state_dict`` to ``out``."""
    _check_format(backbone, "torchvision", str(out))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save(library_state_dict(backbone), out)
    return out


def export_pytorchvideo(backbone: Backbone, out: str | Path) -> Path:
    """Write ``{"model_state": state_dict}`` (pytorchvideo hub layout) to ``out``."""
    _check_format(backbone, "pytorchvideo", str(out))
    out = Path(out)
    out.parent.mkdir(parents=True, exist_ok=True)
    torch.save({"model_state": library_state_dict(backbone)}, out)
    return out


def export_transformers(backbone: Backbone, out: str | Path) -> Path:
    """``save_pretrained`` the wrapped transformers model into directory ``out``."""
    _check_format(backbone, "transformers", str(out))
    out = Path(out)
    backbone.model.save_pretrained(str(out))
    return out


def export_encoder(encoder_path: str | Path, to: str, out: str | Path) -> Path:
    """Load ``encoder.pt`` (``save_encoder`` format) and write it in library format ``to`` at ``out``."""
    if not Path(encoder_path).is_file():
        raise UserError(f"encoder file not found: {encoder_path}")
    backbone = load_encoder(encoder_path)
    _check_format(backbone, to, str(encoder_path))
    writer = {"torchvision": export_torchvision, "pytorchvideo": export_pytorchvideo,
              "transformers": export_transformers}[to]
    return writer(backbone, out)
