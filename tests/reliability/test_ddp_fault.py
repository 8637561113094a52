"""Two gloo processes: when one dies (SIGKILL) or hangs (SIGSTOP), the other exits with an error within a bounded
time instead of waiting forever."""
import os
import signal
import time
from pathlib import Path

import pytest

# Also bounds the start-up rendezvous: on a busy 2-core box rank 1 can take > 15 s to import and connect.
DDP_TIMEOUT_S = 60


def children(pid: int) -> list[int]:
    """Direct child processes of ``pid`` (Fabric's launcher starts rank 1 as a child of rank 0)."""
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            found += [int(c) for c in (task / "children").read_text().split()]
        except (FileNotFoundError, ProcessLookupError):  # the thread ended between listing and reading
            continue
    return found


def cmdline(pid: int) -> str:
    """The command line of ``pid``, or "" when it has already exited."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text()
    except (FileNotFoundError, ProcessLookupError):
        return ""


@pytest.mark.parametrize("fault", ["kill", pytest.param("stop", marks=pytest.mark.slow)])
def test_peer_fault_ends_the_other_process(fault, tiny_pool, tmp_path, tools):
    if not Path("/proc/self/task").is_dir():
        pytest.skip("needs /proc to find the rank-1 process")
    recipe = tmp_path / "simclr.yaml"
    recipe.write_text("method:\n  name: simclr\n")
    run_dir = tmp_path / "run"
    args = [str(recipe), *tools.tiny_args(tiny_pool, run_dir, 1000, frames=1),
            "train.batch_size=2", "train.devices=2", "train.strategy=ddp", "train.accelerator=cpu",
            f"train.ddp_timeout_s={DDP_TIMEOUT_S}"]
    proc = tools.pretrain_process(args)
    rank1 = None
    try:
        deadline = time.time() + 600
        while tools.last_logged_step(run_dir) < 2 and proc.poll() is None and time.time() < deadline:
            time.sleep(0.05)
        assert proc.poll() is None, proc.stderr.read()[-2000:]
        ranks = [c for c in children(proc.pid) if "videossl" in cmdline(c)]
        assert len(ranks) == 1, ranks
        rank1 = ranks[0]
        os.kill(rank1, signal.SIGKILL if fault == "kill" else signal.SIGSTOP)
        faulted = time.time()
        # kill: gloo sees the closed sockets at once (and Fabric's observer kills the group within 5 s);
        # stop: the peer is alive but silent, so only train.ddp_timeout_s ends the wait.
        code = proc.wait(timeout=DDP_TIMEOUT_S + 120)
        elapsed = time.time() - faulted
    finally:
        if rank1 is not None:
            try:
                os.kill(rank1, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert code != 0
    assert elapsed < DDP_TIMEOUT_S + 120
    if fault == "stop":
        assert elapsed >= DDP_TIMEOUT_S * 0.5  # it was the timeout, not something else, that ended it
