"""What a run writes besides checkpoints: ``metrics.csv``, TensorBoard events and PNG plots."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any


class RunLogger:
    """Appends one row per logged step to ``metrics.csv`` (columns grow as new keys appear) and mirrors every
    scalar to TensorBoard. Only rank 0 creates one."""

    def __init__(self, run_dir: str | Path, tensorboard: bool = True):
        self.run_dir = Path(run_dir)
        self.csv_path = self.run_dir / "metrics.csv"
        self.columns: list[str] = []
        if self.csv_path.is_file():
            with open(self.csv_path, newline="") as f:
                self.columns = next(csv.reader(f), [])
        self.writer = None
        if tensorboard:
            from torch.utils.tensorboard import SummaryWriter

            self.writer = SummaryWriter(log_dir=str(self.run_dir / "tensorboard"))

    def log(self, step: int, metrics: dict[str, Any]) -> None:
        row = {"step": step, **{k: float(v) for k, v in metrics.items()}}
        new = [k for k in row if k not in self.columns]
        if new:
            self._rewrite_with_columns(self.columns + new if self.columns else list(row))
        with open(self.csv_path, "a", newline="") as f:
            csv.DictWriter(f, fieldnames=self.columns).writerow(row)
        if self.writer is not None:
            for k, v in row.items():
                if k != "step":
                    self.writer.add_scalar(k, v, step)

    def _rewrite_with_columns(self, columns: list[str]) -> None:
        rows = read_metrics(self.csv_path) if self.csv_path.is_file() else []
        self.columns = columns
        with open(self.csv_path, "w", newline="") as f:
            w = csv.DictWriter(f, fieldnames=columns)
            w.writeheader()
            w.writerows(rows)

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()


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
        fig.savefig(run_dir / filename, dpi=100)
        plt.close(fig)
        written.append(run_dir / filename)
    return written
