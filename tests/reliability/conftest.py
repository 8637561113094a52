"""Helpers shared by the reliability tests: launching ``videossl pretrain`` as a real process and watching it."""
from __future__ import annotations

import csv
import os
import subprocess
import sys
from pathlib import Path

import pytest


def pretrain_process(args: list[str], python_prelude: str = "") -> subprocess.Popen:
    """``python -m videossl.cli pretrain *args`` (or, with ``python_prelude``, that code then the CLI in one
    process, e.g. to patch something first). stdout is dropped, stderr is piped."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    if python_prelude:
        code = f"{python_prelude}\nimport sys\nfrom videossl.cli import main\nsys.exit(main(['pretrain', *sys.argv[1:]]))"
        command = [sys.executable, "-c", code, *args]
    else:
        command = [sys.executable, "-m", "videossl.cli", "pretrain", *args]
    return subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def tiny_args(pool: Path, run_dir: Path, steps: int, frames: int = 2, extra=()) -> list[str]:
    """Overrides for a tiny CPU pretraining run on ``pool`` (as tests/conftest.py's ``tiny_overrides``)."""
    return ["data.format=folder", f"data.root={pool}", f"data.num_frames={frames}", "data.frame_stride=1",
            "data.crop_size=32", "data.num_workers=0", "train.batch_size=4", f"train.max_steps={steps}",
            "train.log_every=1", "train.progress=false", "train.plots=false", f"train.run_dir={run_dir}", *extra]


def last_logged_step(run_dir: Path) -> int:
    """The highest step in ``run_dir/metrics.csv`` (0 before the first row)."""
    try:
        with open(Path(run_dir) / "metrics.csv", newline="") as f:
            return max((int(float(row["step"])) for row in csv.DictReader(f)), default=0)
    except (FileNotFoundError, KeyError, ValueError):
        return 0


def metric_rows(run_dir: Path, drop=("clips_per_s", "data_wait")) -> list[dict[str, str]]:
    """metrics.csv rows without the wall-clock columns."""
    with open(Path(run_dir) / "metrics.csv", newline="") as f:
        return [{k: v for k, v in row.items() if k not in drop} for row in csv.DictReader(f)]


@pytest.fixture
def cli_in_process():
    """``cli_in_process(capsys, argv) -> (exit code, stdout, stderr)`` of ``videossl *argv`` run in this process
    (its log handler then writes to the test's captured stderr); a traceback in stderr fails the test."""
    import logging

    from videossl.cli import main

    def run(capsys, argv):
        ours = logging.getLogger("videossl")
        saved = ours.handlers[:]
        ours.handlers.clear()  # main() adds a handler bound to the current (captured) sys.stderr
        try:
            code = main(argv)
        finally:
            ours.handlers[:] = saved
        captured = capsys.readouterr()
        assert "Traceback" not in captured.err, captured.err
        return code, captured.out, captured.err

    return run


@pytest.fixture
def byol_recipe(tmp_path):
    """A recipe file for BYOL (EMA teacher + momentum schedule: the hardest state to resume exactly)."""
    recipe = tmp_path / "byol.yaml"
    recipe.write_text("method:\n  name: byol\n")
    return recipe


@pytest.fixture(scope="session")
def tools():
    """``tools.pretrain_process``, ``tools.last_logged_step``, ``tools.metric_rows`` (test modules are imported
    with importlib, so helpers travel as a fixture)."""
    from types import SimpleNamespace

    return SimpleNamespace(pretrain_process=pretrain_process, last_logged_step=last_logged_step,
                           metric_rows=metric_rows, tiny_args=tiny_args)
