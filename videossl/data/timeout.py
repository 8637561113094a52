"""Bounded calls: run a decode on a helper thread and give up on it after a deadline.

A decoder stuck inside FFmpeg cannot be interrupted from Python (a signal handler only runs once the C call
returns), and a ``DataLoader`` worker cannot be killed without losing the whole batch. So ``TimedCaller`` runs each
call on one long-lived daemon thread and waits at most ``timeout_s`` for it. A call that does not finish in time
raises ``CallTimeout``; its thread is abandoned (daemon: it never blocks the process from exiting) and the next
call starts a fresh thread. The dataset turns the timeout into a skipped, reported file.
"""
from __future__ import annotations

import queue
import threading
from typing import Any, Callable


class CallTimeout(Exception):
    """The call did not return within the deadline (it may still be running on an abandoned thread)."""


class TimedCaller:
    """``caller(fn, *args)`` -> ``fn(*args)``, run on a helper thread, raising ``CallTimeout`` after ``timeout_s``.

    ``timeout_s <= 0`` calls ``fn`` directly. Not thread-safe: one caller per thread of use (each DataLoader
    worker has its own copy of the dataset, hence its own caller). Picklable: the thread is created lazily.
    """

    def __init__(self, timeout_s: float):
        self.timeout_s = float(timeout_s)
        self._jobs: queue.SimpleQueue | None = None
        self.num_timeouts = 0

    def __getstate__(self) -> dict[str, Any]:
        return {"timeout_s": self.timeout_s, "_jobs": None, "num_timeouts": self.num_timeouts}

    def __call__(self, fn: Callable[..., Any], *args: Any) -> Any:
        if self.timeout_s <= 0:
            return fn(*args)
        if self._jobs is None:
            self._jobs = queue.SimpleQueue()
            threading.Thread(target=_serve, args=(self._jobs,), daemon=True, name="videossl-decode").start()
        done: queue.SimpleQueue = queue.SimpleQueue()
        self._jobs.put((fn, args, done))
        try:
            ok, value = done.get(timeout=self.timeout_s)
        except queue.Empty:
            self.num_timeouts += 1
            self._jobs.put(None)  # the stuck thread exits after its call returns, if it ever does
            self._jobs = None
            raise CallTimeout(f"did not finish within {self.timeout_s:g} s") from None
        if ok:
            return value
        raise value


def _serve(jobs: queue.SimpleQueue) -> None:
    while True:
        job = jobs.get()
        if job is None:
            return
        fn, args, done = job
        try:
            done.put((True, fn(*args)))
        except BaseException as err:  # handed to the caller, raised there
            done.put((False, err))
