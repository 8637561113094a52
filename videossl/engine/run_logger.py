"""What a run writes besides checkpoints: ``metrics.csv``, TensorBoard events and PNG plots."""
from __future__ import annotations

import csv
import io
from pathlib import Path
from typing import Any

from torch.utils.tensorboard import SummaryWriter

from ..files import save_figure, write_text


class RunLogger:
    """Keeps one row per logged step in ``metrics.csv`` (columns grow as new keys appear; every write is atomic,
    ``videossl.files``) and mirrors every scalar to TensorBoard. Only rank 0 creates one.

    ``resume_step``: the step of the checkpoint a run starts from (0 for a new run). Rows of later steps, logged
    by a run killed after its last checkpoint, are dropped, so after a resume each step appears once."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True, resume_step: int = 0):
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / "metrics.csv"
        self.columns: list[str] = []
        self.rows: list[dict[str, Any]] = []
        if self.csv_path.is_file() and resume_step > 0:
            with open(self.csv_path, newline="") as f:
                self.columns = next(csv.reader(f), [])
            self.rows = [r for r in read_metrics(self.csv_path) if _row_step(r) <= resume_step]
        self._write()
        self.writer = None
        if tensorboard:
            self.writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        self.columns += [k for k in row if k not in self.columns]
        self.rows.append(row)
        self._write()
        if self.writer is not None:
            for k, v in row.items():
                if k != "step":
                    self.writer.add_scalar(k, v, step)

    def _write(self) -> None:
        text = io.StringIO()
        w = csv.DictWriter(text, fieldnames=self.columns or ["step"], lineterminator="\n")
        w.writeheader()
        w.writerows(self.rows)
        write_text(self.csv_path, text.getvalue())

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


def _row_step(row: dict[str, str]) -> float:
    try:
        return float(row.get("step") or "inf")
    except ValueError:
        return float("inf")


def read_metrics(path: str | Path) -> list[dict[str, str]]:
    with open(path, newline="") as f:
        return list(csv.DictReader(f))


def plot_metrics(run_dir: str | Path) -> list[Path]:
    """``loss.png``, ``lr.png`` and (if logged) ``collapse.png`` from ``metrics.csv``; a step logged twice (after
    a resume) keeps its last value."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    run_dir = Path(run_dir)
    by_step: dict[int, dict[str, str]] = {}
    for row in read_metrics(run_dir / "metrics.csv"):
        by_step[int(float(row["step"]))] = row
    steps = sorted(by_step)
    written = []
    panels = {"loss.png": ["loss"], "lr.png": ["lr"], "collapse.png": ["emb_std", "emb_rank"]}
    for filename, keys in panels.items():
        keys = [k for k in keys if any(by_step[s].get(k) not in (None, "") for s in steps)]
        if not keys:
            continue
        fig, axes = plt.subplots(1, len(keys), figsize=(5 * len(keys), 3.2), squeeze=False)
        for ax, key in zip(axes[0], keys):
            xs = [s for s in steps if by_step[s].get(key) not in (None, "")]
            ax.plot(xs, [float(by_step[s][key]) for s in xs])
            ax.set_xlabel("step")
            ax.set_ylabel(key)
            ax.grid(alpha=0.3)
        fig.tight_layout()
        save_figure(fig, run_dir / filename, dpi=100)
        plt.close(fig)
        written.append(run_dir / filename)
    return written
