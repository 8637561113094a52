"""videossl: self-supervised learning on video, audio and images.

Shape rule: a clip is ``(C, T, H, W)``, a batch ``(B, C, T, H, W)``; an image is a clip with ``T=1``.
Audio is ``(1, samples)`` raw or ``(1, n_mels, frames)`` log-mel. Losses only see ``(B, D)`` or ``(B, N, D)``.
"""
from pathlib import Path

# The one version string: pyproject.toml reads it (``[tool.setuptools.dynamic]``), ``videossl --version`` prints it.
__version__ = "0.1.0"


def recipes_dir() -> Path:
    """The folder of the shipped recipes: ``videossl/recipes/`` inside the package (pretraining ``*.yaml``, evaluation
    ``eval/*.yaml``), so an installed wheel has them too. In a clone, the top-level ``recipes`` is a link to it.
    Every place that looks a recipe up by name starts here."""
    return Path(__file__).resolve().parent / "recipes"
