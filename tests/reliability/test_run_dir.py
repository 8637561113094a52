"""Issue 20 items 1, 2 and 4: a run directory belongs to one live run, every write is atomic and a full or
read-only disk is one line, and a resume is checked against the checkpoint's config before anything is written.

Before the fix: two runs in one directory both wrote ``encoder.pt.tmp`` and interleaved ``metrics.csv``; runs
started in the same second got the same default directory; ``resume=auto`` picked a run of another recipe; a
full disk was a ``RuntimeError`` traceback that left ``encoder.pt.tmp`` behind; a resume with changed settings
rewrote ``config.yaml`` first and then failed with a raw state_dict or optimizer error, or was accepted silently.
"""
import contextlib
import errno
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from videossl import files
from videossl.config import load_pretrain_config
from videossl.engine.checkpoint import load_checkpoint
from videossl.engine.run_dir import new_run_dir
from videossl.engine.trainer import pretrain
from videossl.errors import UserError


def run(tools, pool, run_dir, steps=2, extra=(), method="simclr"):
    cfg = load_pretrain_config(None, [f"method.name={method}", *tools.tiny_args(pool, run_dir, steps, frames=1,
                                                                                 extra=list(extra))])
    return pretrain(cfg)


def cli(tools, args):
    """``videossl pretrain RECIPE *args`` with an empty recipe (``method.name`` comes from ``args``)."""
    env = dict(os.environ, OMP_NUM_THREADS="1")
    recipe = Path(os.environ.get("PYTEST_TMP_RECIPE_DIR", "/tmp")) / f"videossl-empty-recipe-{os.getpid()}.yaml"
    recipe.write_text("train:\n  seed: 0\n")
    return subprocess.run([sys.executable, "-m", "videossl.cli", "pretrain", str(recipe), *args], env=env,
                          capture_output=True, text=True, timeout=600)


def snapshot(run_dir: Path) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(run_dir.iterdir()) if p.is_file() and p.name != "run.lock"}


def assert_one_line_exit_2(proc, phrase):
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    error_lines = [line for line in proc.stderr.splitlines() if line.startswith("videossl: error")]
    assert len(error_lines) == 1 and phrase in error_lines[0], proc.stderr[-2000:]


# --- item 1: one live run per directory ---

def test_a_second_run_on_a_locked_directory_is_refused_and_changes_nothing(tiny_pool, tmp_path, tools):
    run_dir = tmp_path / "run"
    run(tools, tiny_pool, run_dir)
    before = snapshot(run_dir)
    with files.RunDirLock(run_dir):  # a live run holds the directory
        proc = cli(tools, ["method.name=simclr", *tools.tiny_args(tiny_pool, run_dir, 4, frames=1,
                                                                 extra=["train.resume=auto"])])
    assert_one_line_exit_2(proc, "is in use by a live run (pid")
    assert snapshot(run_dir) == before


def test_the_lock_is_released_when_its_holder_is_killed_even_while_its_forked_children_live(tmp_path):
    """The holder forks a child (as DataLoader workers are forked) that outlives it: with ``flock`` the child kept
    the lock after the holder's SIGKILL and blocked ``resume=auto`` for seconds; a POSIX lock is not inherited."""
    holder = subprocess.Popen([sys.executable, "-c", (
        "import os, time; from videossl.files import RunDirLock\n"
        f"lock = RunDirLock({str(tmp_path)!r}).acquire()\n"
        "child = os.fork()\n"
        "if child == 0: time.sleep(60); os._exit(0)\n"
        "print(child, flush=True); time.sleep(600)")], stdout=subprocess.PIPE, text=True)
    child = int(holder.stdout.readline())
    try:
        with pytest.raises(files.RunDirLocked, match=f"pid {holder.pid}"):
            files.RunDirLock(tmp_path).acquire()
        holder.send_signal(signal.SIGKILL)
        holder.wait(timeout=30)
        os.kill(child, 0)  # the forked child is still alive ...
        files.RunDirLock(tmp_path).acquire().release()  # ... and the lock is free at once
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.kill(child, signal.SIGKILL)


def test_a_second_lock_in_the_same_process_is_refused(tmp_path):
    with files.RunDirLock(tmp_path):
        with pytest.raises(files.RunDirLocked, match="this process"):
            files.RunDirLock(tmp_path).acquire()
    files.RunDirLock(tmp_path).acquire().release()


def test_a_new_run_refuses_a_directory_that_holds_a_checkpoint(tiny_pool, tmp_path, tools):
    run_dir = tmp_path / "run"
    run(tools, tiny_pool, run_dir)
    before = snapshot(run_dir)
    with pytest.raises(UserError, match="already holds a run .*train.resume=auto"):
        run(tools, tiny_pool, run_dir, steps=3)
    assert snapshot(run_dir) == before


def test_default_run_names_started_in_the_same_second_differ():
    torch.manual_seed(0)  # the suffix must not come from the (seeded) torch RNG
    names = {new_run_dir("simclr") for _ in range(200)}
    assert len(names) == 200


def test_concurrent_writers_of_one_file_use_their_own_temp_names(tmp_path):
    """Two processes saving the same encoder-like file 30 times each: before, both used ``encoder.pt.tmp`` and
    one died with FileNotFoundError."""
    code = ("import sys, torch; from videossl.files import torch_save\n"
            "for i in range(30): torch_save({'w': torch.full((20000,), float(i))}, sys.argv[1])\n")
    procs = [subprocess.Popen([sys.executable, "-c", code, str(tmp_path / "encoder.pt")], stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    for p in procs:
        assert p.wait(timeout=300) == 0, p.stderr.read()
    assert [p.name for p in tmp_path.iterdir()] == ["encoder.pt"]
    assert torch.load(tmp_path / "encoder.pt", weights_only=True)["w"][0] == 29.0


def test_resume_auto_without_a_run_dir_continues_only_a_run_with_the_same_settings(tiny_pool, tmp_path, tools,
                                                                                  monkeypatch):
    monkeypatch.chdir(tmp_path)
    base = ["method.name=simclr", *[a for a in tools.tiny_args(tiny_pool, Path("x"), 2, frames=1)
                                    if not a.startswith("train.run_dir")]]
    first = pretrain(load_pretrain_config(None, base))
    time.sleep(0.05)
    other = pretrain(load_pretrain_config(None, base + ["optim.lr=0.01"]))  # newer, other settings
    assert first != other and first.parent == other.parent == Path("runs")
    config_before = (other / "config.yaml").read_bytes()
    resumed = pretrain(load_pretrain_config(None, base + ["train.resume=auto"]))
    assert resumed == first  # not the newest run of the method: the one with the same settings
    assert (other / "config.yaml").read_bytes() == config_before


# --- item 4: resume checks before any write ---

@pytest.mark.parametrize("change, phrase", [
    (["optim.lr=0.01"], "optim.lr 0.001 -> 0.01"),
    (["train.batch_size=2"], "train.batch_size 4 -> 2"),
    (["optim.name=sgd"], "trained with other optim.name"),
    (["method.name=byol"], "trained with other method.name"),
    (["backbone.name=tiny_r2d"], "trained with other backbone.name"),
], ids=["lr", "batch", "optimizer", "method", "backbone"])
def test_a_resume_with_other_settings_is_refused_before_config_yaml_is_written(change, phrase, tiny_pool, tmp_path,
                                                                               tools):
    run_dir = tmp_path / "run"
    run(tools, tiny_pool, run_dir)
    before = snapshot(run_dir)
    proc = cli(tools, ["method.name=simclr", *tools.tiny_args(tiny_pool, run_dir, 2, frames=1,
                                                               extra=["train.resume=auto", *change])])
    assert_one_line_exit_2(proc, phrase)
    assert snapshot(run_dir) == before  # config.yaml still describes last.ckpt


def test_an_allowed_change_is_accepted_and_logged(tiny_pool, tmp_path, tools, caplog, monkeypatch):
    monkeypatch.setattr(logging.getLogger("videossl"), "propagate", True)  # the CLI may have turned it off
    run_dir = tmp_path / "run"
    run(tools, tiny_pool, run_dir)
    run(tools, tiny_pool, run_dir, steps=3, extra=["train.resume=auto", "optim.lr=0.002",
                                                   "train.resume_allow_changes=[optim.lr,train.max_steps]"])
    assert "resume: optim.lr changed from 0.001 to 0.002" in caplog.text
    assert load_checkpoint(run_dir / "last.ckpt")["step"] == 3
    assert "lr: 0.002" in (run_dir / "config.yaml").read_text()


def test_an_unknown_allowed_key_is_refused(tiny_pool, tmp_path, tools):
    run_dir = tmp_path / "run"
    run(tools, tiny_pool, run_dir)
    with pytest.raises(UserError, match="train.resume_allow_changes: unknown key.* optim.lrr"):
        run(tools, tiny_pool, run_dir, extra=["train.resume=auto", "train.resume_allow_changes=[optim.lrr]"])


def test_a_checkpoint_says_what_it_is(tiny_pool, tmp_path, tools):
    run_dir = run(tools, tiny_pool, tmp_path / "run")
    ckpt = load_checkpoint(run_dir / "last.ckpt")
    assert ckpt["format"] == "videossl-checkpoint-v1"
    assert (ckpt["method"], ckpt["backbone"], ckpt["world_size"]) == ("simclr", "tiny_r3d", 1)
    assert torch.load(run_dir / "encoder.pt", weights_only=True)["format"] == "videossl-encoder-v1"


def test_metrics_csv_has_each_step_once_after_a_resume(tiny_pool, tmp_path, tools, monkeypatch):
    """The first run logs step 3 after its step-2 checkpoint and dies; the resumed run logs 3 again."""
    from videossl.engine import run_logger

    run_dir = tmp_path / "run"
    real_log = run_logger.RunLogger.log

    def log_then_die(self, step, metrics):
        real_log(self, step, metrics)
        if step == 3:
            raise KeyboardInterrupt

    monkeypatch.setattr(run_logger.RunLogger, "log", log_then_die)
    with pytest.raises(KeyboardInterrupt):
        run(tools, tiny_pool, run_dir, steps=4, extra=["train.ckpt_every=2"])
    assert [int(float(r["step"])) for r in tools.metric_rows(run_dir)] == [1, 2, 3]
    monkeypatch.setattr(run_logger.RunLogger, "log", real_log)
    run(tools, tiny_pool, run_dir, steps=4, extra=["train.ckpt_every=2", "train.resume=auto"])
    assert [int(float(r["step"])) for r in tools.metric_rows(run_dir)] == [1, 2, 3, 4]


# --- item 2: full and read-only disks ---

def _mount_tmpfs(path: Path, size: str, read_only: bool = False) -> bool:
    if os.geteuid() != 0:
        return False
    path.mkdir(parents=True, exist_ok=True)
    options = f"size={size}" + (",ro" if read_only else "")
    return subprocess.run(["mount", "-t", "tmpfs", "-o", options, "tmpfs", str(path)],
                          capture_output=True).returncode == 0


def test_a_full_tmpfs_is_one_line_keeps_the_previous_files_and_leaves_no_temp_file(tiny_pool, tmp_path, tools):
    disk = tmp_path / "disk"
    if not _mount_tmpfs(disk, "20m"):
        pytest.skip("mounting a tmpfs needs root (and a kernel that allows it)")
    try:
        run_dir = disk / "run"
        args = ["method.name=simclr", *tools.tiny_args(tiny_pool, run_dir, 2, frames=1)]
        proc = cli(tools, args)  # ~16 MB of checkpoint + encoder: a second checkpoint does not fit
        assert proc.returncode == 0, proc.stderr[-2000:]
        before = snapshot(run_dir)
        proc = cli(tools, ["method.name=simclr", *tools.tiny_args(tiny_pool, run_dir, 4, frames=1, extra=[
            "train.resume=auto", "train.ckpt_every=1", "train.resume_allow_changes=[train.max_steps]"])])
        assert_one_line_exit_2(proc, "No space left on device")
        assert "could not write checkpoint" in proc.stderr and "the previous checkpoint is kept" in proc.stderr
        after = snapshot(run_dir)
        assert after["last.ckpt"] == before["last.ckpt"] and after["encoder.pt"] == before["encoder.pt"]
        assert not [p for p in run_dir.iterdir() if ".tmp-" in p.name]
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


def test_a_read_only_run_directory_is_one_line(tiny_pool, tmp_path, tools):
    disk = tmp_path / "ro"
    if not _mount_tmpfs(disk, "1m", read_only=True):
        pytest.skip("mounting a read-only tmpfs needs root")
    try:
        proc = cli(tools, ["method.name=simclr", *tools.tiny_args(tiny_pool, disk / "run", 2, frames=1)])
        assert_one_line_exit_2(proc, "cannot create run directory")
        assert "Read-only file system" in proc.stderr
    finally:
        subprocess.run(["umount", "-l", str(disk)], check=False)


@pytest.mark.parametrize("code", [errno.ENOSPC, errno.EROFS, errno.EACCES], ids=["ENOSPC", "EROFS", "EACCES"])
@pytest.mark.parametrize("writer", ["torch_save", "write_text", "save_figure"])
def test_injected_write_errors_are_one_line_and_remove_the_temp_file(writer, code, tmp_path, monkeypatch):
    target = tmp_path / {"torch_save": "encoder.pt", "write_text": "metrics.csv", "save_figure": "loss.png"}[writer]
    target.write_bytes(b"previous")
    real_open = open

    class FailingFile:
        def __init__(self, handle):
            self.handle, self.name = handle, handle.name

        def write(self, data):
            raise OSError(code, os.strerror(code))

        def __getattr__(self, attr):
            return getattr(self.handle, attr)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

    monkeypatch.setattr(files, "open", lambda p, mode="r", *a, **k: FailingFile(real_open(p, mode, *a, **k)),
                        raising=False)
    if writer == "torch_save":
        call = lambda: files.torch_save({"w": torch.zeros(1000)}, target)  # noqa: E731
    elif writer == "write_text":
        call = lambda: files.write_text(target, "step,loss\n1,0.5\n")  # noqa: E731
    else:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        fig = plt.figure()
        call = lambda: files.save_figure(fig, target)  # noqa: E731
    with pytest.raises(files.WriteError) as info:
        call()
    message = str(info.value)
    assert message == f"could not write {target}: {os.strerror(code)}; the previous file is kept"
    assert "\n" not in message
    assert target.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == [target.name]
