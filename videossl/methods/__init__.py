"""Methods: one file = one whole method. ``METHODS`` is the explicit list the CLI, recipes and the smoke
test read; adding a method is one file here, one recipe and one line below."""
from __future__ import annotations

from .base import Method, StepInfo
from .byol import BYOL
from .simclr import SimCLR

METHODS: dict[str, type[Method]] = {
    "simclr": SimCLR,
    "byol": BYOL,
}

__all__ = ["METHODS", "Method", "StepInfo"]
