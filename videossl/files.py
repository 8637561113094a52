"""Every file a run writes goes through here: one atomic writer and one run-directory lock.

A write goes to a unique temp file next to the target (``.<name>.tmp-<pid>-<random>``), is flushed, fsynced and
renamed over the target, so a crash, a kill or a full disk never leaves a half-written file under the real name:
the previous file stays intact. A failure the user can fix (disk full, read-only file system, no permission,
quota) is a :class:`WriteError` (a ``UserError``: one line naming the path, exit code 2 from the CLI) and the temp
file is removed. torch's zip writer hides the ``OSError`` of a failed write inside a ``RuntimeError``; the writer
here records the ``OSError`` itself, so the message says "No space left on device" and not "file write failed".

``RunDirLock`` makes a run directory belong to one live process: an exclusive ``fcntl.lockf`` on ``run.lock``
that the kernel releases when the process exits, also on SIGKILL.
"""
from __future__ import annotations

import contextlib
import errno
import glob
import io
import os
from pathlib import Path
from typing import Any, BinaryIO, Callable, Iterator

import torch

from .errors import UserError

# errno values a user can act on (free space, fix permissions, pick another folder); anything else is a bug or
# a hardware fault and keeps its traceback
USER_ERRNOS = {errno.ENOSPC, errno.EROFS, errno.EACCES, errno.EPERM, errno.EDQUOT, errno.EFBIG, errno.ENAMETOOLONG,
               errno.ENOTDIR, errno.EISDIR, errno.ENOENT}


class WriteError(UserError):
    """A file could not be written; the message names the path and the reason, and says the old file is kept."""


class RunDirLocked(UserError):
    """Another live process holds the run directory."""


def _temp_name(path: Path) -> Path:
    return path.with_name(f".{path.name}.tmp-{os.getpid()}-{os.urandom(3).hex()}")


def write_error(path: Path, error: OSError, what: str = "") -> WriteError:
    """One line: the target (``what``, e.g. "checkpoint", names its kind), the reason and what happened to the
    previous file."""
    reason = error.strerror or str(error) or type(error).__name__
    kept = f"; the previous {what or 'file'} is kept" if path.exists() else ""
    return WriteError(f"could not write {what + ' ' if what else ''}{path}: {reason}{kept}")


class _RecordingWriter(io.RawIOBase):
    """A binary file wrapper that remembers the ``OSError`` of a failed ``write`` (torch's serializer replaces it
    with a ``RuntimeError`` that no longer says why)."""

    def __init__(self, handle: BinaryIO):
        super().__init__()
        self.handle, self.error = handle, None

    @property
    def name(self) -> str:
        return self.handle.name

    def writable(self) -> bool:
        return True

    def fileno(self) -> int:
        return self.handle.fileno()

    def write(self, data: Any) -> int:
        try:
            return self.handle.write(data)
        except OSError as e:
            self.error = e
            raise

    def flush(self) -> None:
        self.handle.flush()


def atomic_write(path: str | Path, write: Callable[[BinaryIO], None], what: str = "") -> Path:
    """Call ``write(file)`` on a temp file, fsync it and rename it to ``path``. Raises ``WriteError`` (temp file
    removed, previous ``path`` untouched) when the disk is full, read-only or not writable."""
    path = Path(path)
    tmp = _temp_name(path)
    recorder = None
    try:
        with open(tmp, "wb") as handle:
            recorder = _RecordingWriter(handle)
            write(recorder)  # type: ignore[arg-type]
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except OSError as e:
        _remove(tmp)
        if e.errno in USER_ERRNOS:
            raise write_error(path, e, what) from None
        raise
    except RuntimeError as e:  # torch.save: "PytorchStreamWriter failed writing file ..."
        _remove(tmp)
        if recorder is not None and recorder.error is not None and recorder.error.errno in USER_ERRNOS:
            raise write_error(path, recorder.error, what) from None
        raise
    except BaseException:
        _remove(tmp)
        raise
    remove_stale_temp_files(path)
    return path


def _remove(tmp: Path) -> None:
    with contextlib.suppress(OSError):
        tmp.unlink()


def write_bytes(path: str | Path, data: bytes) -> Path:
    return atomic_write(path, lambda f: f.write(data))  # type: ignore[arg-type,return-value]


def write_text(path: str | Path, text: str) -> Path:
    return write_bytes(path, text.encode("utf-8"))


def torch_save(obj: Any, path: str | Path, what: str = "") -> Path:
    """``torch.save`` through the atomic writer."""
    return atomic_write(path, lambda f: torch.save(obj, f), what)


def save_figure(fig: Any, path: str | Path, **kwargs: Any) -> Path:
    """A matplotlib figure through the atomic writer (format from the suffix)."""
    fmt = Path(path).suffix.lstrip(".") or "png"
    return atomic_write(path, lambda f: fig.savefig(f, format=fmt, **kwargs))


def remove_stale_temp_files(path: Path) -> None:
    """Delete ``.<name>.tmp-<pid>[-<random>]`` files that writers killed mid-write left behind (their pid is gone)."""
    for tmp in path.parent.glob(f".{glob.escape(path.name)}.tmp-*"):
        pid = tmp.name.rsplit(".tmp-", 1)[-1].split("-")[0]
        if not pid.isdigit() or int(pid) == os.getpid():
            continue
        try:
            os.kill(int(pid), 0)
        except ProcessLookupError:
            _remove(tmp)
        except OSError:
            pass  # the process exists (owned by someone else): leave its file alone


def make_dir(path: str | Path, what: str = "directory") -> Path:
    """``mkdir -p`` whose failure (read-only, no permission, a file in the way) is one line naming the path."""
    path = Path(path)
    try:
        path.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise UserError(f"cannot create {what} {path}: a file is in the way") from None
    except OSError as e:
        raise UserError(f"cannot create {what} {path}: {e.strerror or e}") from None
    if not os.access(path, os.W_OK | os.X_OK):
        raise UserError(f"cannot write to {what} {path}: permission denied (read-only or owned by someone else)")
    return path


_HELD_RUN_DIRS: set[str] = set()  # POSIX locks are per process: a second lock in this process must be refused here


class RunDirLock:
    """Exclusive lock on ``run_dir/run.lock`` for the life of a run (``with RunDirLock(d): ...``).

    A POSIX record lock (``fcntl.lockf``): the kernel drops it when the process exits for any reason, also on
    SIGKILL, and unlike ``flock`` it is not inherited by forked DataLoader workers, which outlive a killed parent
    by a few seconds; so ``train.resume=auto`` can take over at once. A second process gets ``RunDirLocked``
    naming the holder's pid; a second lock inside the same process (which POSIX would grant) is refused too. The
    lock file is never deleted (deleting it would let two processes lock two different inodes)."""

    NAME = "run.lock"

    def __init__(self, run_dir: str | Path):
        self.path = Path(run_dir) / self.NAME
        self.key = os.path.realpath(self.path)
        self.handle: Any = None

    def _refuse(self, holder: str) -> RunDirLocked:
        return RunDirLocked(f"run directory {self.path.parent} is in use by a live run ({holder}); wait for it to "
                            f"finish or set another train.run_dir")

    def acquire(self) -> "RunDirLock":
        import fcntl

        if self.key in _HELD_RUN_DIRS:
            raise self._refuse(f"pid {os.getpid()}, this process")
        try:
            handle = open(self.path, "a+")
        except OSError as e:
            raise UserError(f"cannot lock run directory {self.path.parent}: {e.strerror or e}") from None
        try:
            fcntl.lockf(handle.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as e:
            if e.errno not in (errno.EACCES, errno.EAGAIN):
                handle.close()
                raise UserError(f"cannot lock run directory {self.path.parent}: {e.strerror or e}") from None
            handle.seek(0)
            holder = handle.read().strip() or "another process"
            handle.close()
            raise self._refuse(holder) from None
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {os.uname().nodename}\n")
        handle.flush()
        self.handle = handle
        _HELD_RUN_DIRS.add(self.key)
        return self

    def release(self) -> None:
        if self.handle is not None:
            import fcntl

            with contextlib.suppress(OSError):
                fcntl.lockf(self.handle.fileno(), fcntl.LOCK_UN)
            self.handle.close()
            self.handle = None
            _HELD_RUN_DIRS.discard(self.key)

    def __enter__(self) -> "RunDirLock":
        return self.acquire() if self.handle is None else self

    def __exit__(self, *exc: Any) -> None:
        self.release()


@contextlib.contextmanager
def locked_run_dir(run_dir: str | Path) -> Iterator[RunDirLock]:
    lock = RunDirLock(run_dir).acquire()
    try:
        yield lock
    finally:
        lock.release()
