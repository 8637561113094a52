"""What a protocol leaves behind: a JSON file of its numbers, a plain-text table, and the t-SNE plot."""
from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import torch
from sklearn.manifold import TSNE

from videossl.files import make_dir, save_figure, write_text


def write_json(path: str | Path, result: dict) -> Path:
    """Write ``result`` as indented JSON through the atomic writer (``videossl.files``: a unique temp file then a
    rename; a read-only or full disk is one line naming the path). Returns the path."""
    path = Path(path)
    make_dir(path.parent, "output directory")
    return write_text(path, json.dumps(result, indent=2, sort_keys=False, default=_json_default) + "\n")


def prepare_out_dir(out_dir: str | Path) -> Path:
    """Create ``out_dir`` (the ``out_dir`` setting) or fail now, in one line, before any features are computed."""
    return make_dir(out_dir, "out_dir")


def _json_default(value: Any) -> Any:
    if isinstance(value, torch.Tensor):
        return value.tolist()
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def format_table(rows: Sequence[dict], columns: Sequence[str], title: str | None = None) -> str:
    """A small aligned plain-text table. Floats in [0, 1] print as percentages with one decimal.

    rows: dicts keyed by ``columns`` (missing cells print as ``-``).
    """
    cells = [[_format_cell(row.get(col)) for col in columns] for row in rows]
    widths = [max(len(col), *(len(r[i]) for r in cells)) if cells else len(col) for i, col in enumerate(columns)]
    line = "  ".join(col.ljust(w) if i == 0 else col.rjust(w) for i, (col, w) in enumerate(zip(columns, widths)))
    out = [title] if title else []
    out += [line, "-" * len(line)]
    for r in cells:
        out.append("  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(r, widths))))
    return "\n".join(out)


def _format_cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        if math.isnan(value):
            return "nan"
        return f"{100 * value:.1f}" if 0.0 <= value <= 1.0 else f"{value:.4g}"
    return str(value)


def result_table(protocol: str, result: dict, metrics: Sequence[str]) -> str:
    """The table a protocol prints: one row per split, plus ``mean`` and ``std`` rows for ``split=all``.

    Accuracies and recalls are printed in percent.
    """
    if "splits" in result and len(result["splits"]) > 1:
        rows = [{"split": str(r.get("split", i + 1)), **{m: r[m] for m in metrics}} for i, r in enumerate(result["splits"])]
        rows.append({"split": "mean", **result["mean"]})
        rows.append({"split": "std", **result["std"]})  # fractions too: printed in percentage points
    else:
        single = result["splits"][0] if "splits" in result else result
        rows = [{"split": str(single.get("split", "1")), **{m: single[m] for m in metrics}}]
    encoder = result.get("encoder") or (result.get("splits") or [{}])[0].get("encoder", "")
    return format_table(rows, ["split", *metrics], title=f"{protocol} ({encoder}) [%]")


def plot_tsne(features: torch.Tensor, labels: torch.Tensor, class_names: Sequence[str], path: str | Path,
              max_points: int = 2000, seed: int = 0, title: str = "t-SNE of test features") -> Path:
    """2-D t-SNE (scikit-learn) of ``(N, D)`` features, one colour per class, saved as PNG (Agg backend).

    At most ``max_points`` points (a seeded random subset) keep it to seconds on a CPU.
    """
    import matplotlib  # lazy: pyplot's backend is fixed at its first import, so Agg is chosen right before it

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    path = Path(path)
    make_dir(path.parent, "output directory")
    feats = features.float().numpy()
    labs = labels.numpy()
    if feats.shape[0] > max_points:
        keep = np.random.default_rng(seed).choice(feats.shape[0], max_points, replace=False)
        feats, labs = feats[keep], labs[keep]
    perplexity = float(min(30.0, max(2.0, (feats.shape[0] - 1) / 3)))  # must stay below the point count
    embedded = TSNE(n_components=2, perplexity=perplexity, init="pca", random_state=seed).fit_transform(feats)

    fig, ax = plt.subplots(figsize=(7, 6), dpi=100)
    cmap = plt.get_cmap("tab20" if len(class_names) > 10 else "tab10")
    for c in np.unique(labs):
        mask = labs == c
        name = class_names[c] if 0 <= c < len(class_names) else str(c)
        ax.scatter(embedded[mask, 0], embedded[mask, 1], s=8, color=cmap(int(c) % cmap.N), label=name)
    if len(class_names) <= 20:
        ax.legend(fontsize=7, markerscale=2, loc="best", frameon=False)
    ax.set_title(title)
    ax.set_xticks([])
    ax.set_yticks([])
    fig.tight_layout()
    try:
        save_figure(fig, path)  # atomic; a read-only or full disk is one line naming the path
    finally:
        plt.close(fig)
    return path
