"""videossl: self-supervised learning on video, audio and images.

Shape rule: a clip is ``(C, T, H, W)``, a batch ``(B, C, T, H, W)``; an image is a clip with ``T=1``.
Audio is ``(1, samples)`` raw or ``(1, n_mels, frames)`` log-mel. Losses only see ``(B, D)`` or ``(B, N, D)``.
"""
from __future__ import annotations

from pathlib import Path

from .errors import UserError

# The one version string: pyproject.toml reads it (``[tool.setuptools.dynamic]``), ``videossl --version`` prints it.
__version__ = "0.1.0"


def recipes_dir() -> Path:
    """The folder of the shipped recipes: ``videossl/recipes/`` inside the package (pretraining ``*.yaml``, evaluation
    ``eval/*.yaml``), so an installed wheel has them too. In a clone, the top-level ``recipes`` is a link to it.
    Every place that looks a recipe up by name starts here."""
    return Path(__file__).resolve().parent / "recipes"


def resolve_recipe(recipe: str | Path) -> Path:
    """A recipe path, or a bare name (``simclr_synthetic_tiny3d``, ``eval/ucf101_linear``) looked up in
    :func:`recipes_dir`. Shared by every command that takes a recipe (pretrain, plan, bench, viz)."""
    path = Path(recipe)
    if path.is_file():
        return path
    shipped = recipes_dir()
    for candidate in (shipped / str(recipe), shipped / f"{recipe}.yaml"):
        if candidate.is_file():
            return candidate
    raise UserError(f"recipe not found: {recipe} (neither a file nor a name in {shipped})")
