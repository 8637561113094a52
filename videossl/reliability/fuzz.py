"""Fuzz the readers: broken files through every decoder backend and through a training-data loader.

    python -m videossl.reliability.fuzz --count 1000 --out /tmp/videossl-fuzz [--timeout 30] [--workers 2]

1. Per backend, every file is probed and decoded (first/middle/last and a few random frames, with and without
   the decoder's resize, plus 0.5 s of audio when there is an audio stream) in a worker process that is killed
   after ``--timeout`` seconds, so a crash or a hang is recorded, not suffered. Each (file, backend) gets an
   outcome: ``ok`` (frames of the right shape and dtype), ``clean_error`` (a ``DecodeError`` naming the file
   and the reason), ``unclean_error`` (any other exception: a bug), ``crash`` (the worker died) or ``timeout``.
2. Per backend, a ``VideoDataset`` over the broken files mixed with good copies of the seeds is read through a
   multi-worker ``DataLoader`` (with a ``timeout`` per batch): every good file must be loaded as itself, and
   every file that was replaced by another sample must be in the bad-file log with a reason.

Passing means: no crash, no timeout, no unclean error, every ``must_fail`` file rejected on every backend,
and the loader check above. The exit code is 0 on a pass, 1 otherwise; the summary is printed as a table.
"""
from __future__ import annotations

import argparse
import json
import logging
import multiprocessing
import os
import shutil
import sys
import time
from collections import Counter
from multiprocessing.connection import wait
from pathlib import Path
from typing import Any, Callable, Iterable, NamedTuple

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader

from videossl.data.datasets import DatasetIndex, VideoEntry
from videossl.data.decode import DecodeError, available_decoders, create_decoder, short_side_size
from videossl.data.sampling import RandomClipSampler, ViewSpec
from videossl.data.video_dataset import VideoDataset
from videossl.reliability.corpus import VIDEO_SEEDS, make_corpus

OUTCOMES = ("ok", "clean_error", "unclean_error", "crash", "timeout")
FAILING_OUTCOMES = ("unclean_error", "crash", "timeout")


class Outcome(NamedTuple):
    """What happened to one file on one backend; ``reason`` is the error message ('' when ok)."""

    status: str
    reason: str = ""


# --------------------------------------------------------------------------------- isolated workers


def _worker_loop(connection, func: Callable) -> None:
    torch.set_num_threads(1)
    while True:
        task = connection.recv()
        if task is None:
            return
        connection.send(func(*task))


def run_isolated(func: Callable[..., Outcome], tasks: list[tuple], timeout: float, workers: int = 2) -> list[Outcome]:
    """``func(*task)`` for every task in killable worker processes (fork). A task that runs longer than
    ``timeout`` seconds gives ``Outcome("timeout")``; one whose worker dies gives ``Outcome("crash")``; the
    worker is replaced either way. Results are in task order."""
    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")

    def start():
        parent, child = context.Pipe()
        process = context.Process(target=_worker_loop, args=(child, func), daemon=True)
        process.start()
        child.close()
        return {"process": process, "pipe": parent, "task": None, "started": 0.0}

    results: list[Outcome | None] = [None] * len(tasks)
    pending = list(range(len(tasks)))[::-1]
    pool = [start() for _ in range(max(1, min(workers, len(tasks))))]
    try:
        while pending or any(w["task"] is not None for w in pool):
            for slot, worker in enumerate(pool):
                if worker["task"] is None and pending:
                    worker["task"], worker["started"] = pending.pop(), time.monotonic()
                    worker["pipe"].send(tasks[worker["task"]])
                    continue
                if worker["task"] is None:
                    continue
                crashed = False
                if worker["pipe"].poll():
                    try:
                        results[worker["task"]] = worker["pipe"].recv()
                        worker["task"] = None
                        continue
                    except (EOFError, OSError):
                        crashed = True
                late = time.monotonic() - worker["started"] > timeout
                if crashed or late or not worker["process"].is_alive():
                    worker["process"].kill()
                    worker["process"].join()
                    code = worker["process"].exitcode
                    results[worker["task"]] = (Outcome("timeout", f"no answer after {timeout:g} s") if late and not
                                               crashed else Outcome("crash", f"worker died (exit code {code})"))
                    worker["pipe"].close()
                    pool[slot] = start()
            busy = [w["pipe"] for w in pool if w["task"] is not None]
            if busy and not (pending and any(w["task"] is None for w in pool)):
                wait(busy, timeout=0.1)
    finally:
        for worker in pool:
            try:
                worker["pipe"].send(None)
            except OSError:
                pass
            worker["process"].join(timeout=2)
            if worker["process"].is_alive():
                worker["process"].kill()
                worker["process"].join()
    return [r if r is not None else Outcome("crash", "no result") for r in results]


# ---------------------------------------------------------------------------------- one file, one backend


def decode_everything(path: str, decoder_name: str, seed: int = 0) -> Outcome:
    """Probe, decode frames (first/middle/last + 3 random, at full size and resized to 16 px) and 0.5 s of audio.

    A success must give uint8 ``(T, H, W, 3)`` frames of the probed size; audio ``(1, 8000)`` float32."""
    decoder = create_decoder(decoder_name)
    try:
        meta = decoder.probe(path)
        last = meta.num_frames - 1
        rng = np.random.default_rng(seed)
        indices = [0, last // 2, last, *rng.integers(0, max(last, 0) + 1, size=3).tolist()]
        for short_side in (None, 16):
            frames = decoder.frames(path, indices, short_side=short_side)
            height, width = short_side_size(meta.height, meta.width, short_side)
            if frames.dtype != torch.uint8 or tuple(frames.shape) != (len(indices), height, width, 3):
                return Outcome("unclean_error", f"{path}: frames {frames.dtype} {tuple(frames.shape)}, expected "
                                                f"uint8 {(len(indices), height, width, 3)}")
        if meta.has_audio:
            wave = decoder.audio(path, 0.0, 0.5, 16000)
            if wave.dtype != torch.float32 or tuple(wave.shape) != (1, 8000):
                return Outcome("unclean_error", f"{path}: audio {wave.dtype} {tuple(wave.shape)}, expected (1, 8000)")
    except DecodeError as error:
        if not str(error).startswith(f"{path}: "):
            return Outcome("unclean_error", f"DecodeError without the path: {error}")
        return Outcome("clean_error", str(error))
    except Exception as error:  # noqa: BLE001 - any other exception is what the fuzzer looks for
        text = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        return Outcome("unclean_error", f"{path}: {type(error).__name__}: {text}")
    return Outcome("ok")


def fuzz_backends(paths: list[str], backends: Iterable[str], timeout: float = 30.0,
                  workers: int = 2) -> dict[str, list[Outcome]]:
    """``{backend: [Outcome per path]}`` with every file decoded in isolated workers."""
    return {name: run_isolated(decode_everything, [(p, name, i) for i, p in enumerate(paths)], timeout, workers)
            for name in backends}


# ------------------------------------------------------------------------------------------- the loader


def _fixed_size_clip(frames):
    """uint8 ``(T, H, W, 3)`` -> float ``(3, T, 16, 16)`` so clips of any source size collate."""
    clip = frames.permute(3, 0, 1, 2).float() / 255.0  # (C, T, H, W)
    return F.interpolate(clip, size=(16, 16), mode="bilinear", align_corners=False)


def loader_check(bad_paths: list[str], good_paths: list[str], decoder_name: str, log_file: str | Path,
                 workers: int = 2, batch_timeout: float = 120.0) -> dict[str, Any]:
    """Read every index of a dataset of ``bad_paths + good_paths`` through a DataLoader (2 frames per clip).

    Returns ``{"samples", "good_loaded_as_itself", "good_total", "substituted", "substituted_logged",
    "logged_files", "logged_without_reason", "error"}``; ``error`` is '' unless the loader itself failed.
    """
    paths = list(bad_paths) + list(good_paths)
    index = DatasetIndex([VideoEntry(p, 0) for p in paths], ["any"])
    views = ViewSpec(RandomClipSampler(num_frames=2, stride=2), {"clip": _fixed_size_clip})
    log_file = Path(log_file)
    log_file.unlink(missing_ok=True)
    dataset = VideoDataset(index, views, decoder=decoder_name, seed=0, bad_file_log=str(log_file), max_retries=50)
    loader = DataLoader(dataset, batch_size=8, num_workers=workers, timeout=batch_timeout if workers else 0,
                        shuffle=False)
    loaded: list[int] = []
    error = ""
    try:
        for batch in loader:
            loaded += batch["index"].tolist()
            assert batch["video"][0].shape[1:] == (3, 2, 16, 16)
    except Exception as e:  # noqa: BLE001 - the report says what stopped the loader
        error = f"{type(e).__name__}: {str(e).splitlines()[0][:300] if str(e) else ''}"
    logged: dict[str, str] = {}
    if log_file.exists():
        for line in log_file.read_text(encoding="utf-8").splitlines():
            path, _, reason = line.partition("\t")
            logged[path] = reason
    first_good = len(bad_paths)
    substituted = [paths[i] for i, got in enumerate(loaded) if got != i]
    good_ok = sum(1 for i, got in enumerate(loaded) if i >= first_good and got == i)
    return {"samples": len(loaded), "good_loaded_as_itself": good_ok, "good_total": len(good_paths),
            "substituted": len(substituted), "substituted_logged": sum(1 for p in substituted if p in logged),
            "logged_files": len(logged), "logged_without_reason": sum(1 for r in logged.values() if not r.strip()),
            "error": error}


def loader_passed(result: dict[str, Any], total: int) -> bool:
    return (not result["error"] and result["samples"] == total
            and result["good_loaded_as_itself"] == result["good_total"]
            and result["substituted_logged"] == result["substituted"] and result["logged_without_reason"] == 0)


# ------------------------------------------------------------------------------------------- the report


def summarize(cases, outcomes: dict[str, list[Outcome]]) -> dict[str, Any]:
    """Counts per backend and outcome, per kind, and the list of problems (empty on a pass)."""
    summary: dict[str, Any] = {"files": len(cases), "backends": {}, "kinds": {}, "problems": []}
    for backend, results in outcomes.items():
        summary["backends"][backend] = dict(Counter(r.status for r in results))
        for case, result in zip(cases, results):
            summary["kinds"].setdefault(case.kind, Counter())[f"{backend}:{result.status}"] += 1
            if result.status in FAILING_OUTCOMES:
                summary["problems"].append(f"{backend} {result.status}: {case.path} ({case.note}): {result.reason}")
            elif case.must_fail and result.status == "ok":
                summary["problems"].append(f"{backend} accepted a must-fail file: {case.path} ({case.note})")
    summary["kinds"] = {k: dict(v) for k, v in summary["kinds"].items()}
    return summary


def format_table(summary: dict[str, Any], backends: list[str]) -> str:
    head = f"{'kind':<20}" + "".join(f"{b + ' ok/clean/bad':>28}" for b in backends)
    lines = [head]
    for kind, counts in summary["kinds"].items():
        cells = []
        for b in backends:
            bad = sum(counts.get(f"{b}:{s}", 0) for s in FAILING_OUTCOMES)
            cells.append(f"{counts.get(f'{b}:ok', 0)}/{counts.get(f'{b}:clean_error', 0)}/{bad}")
        lines.append(f"{kind:<20}" + "".join(f"{c:>28}" for c in cells))
    return "\n".join(lines)


def run_fuzz(out: str | Path, count: int = 1000, seed: int = 0, backends: list[str] | None = None,
             timeout: float = 30.0, workers: int = 2, good_copies: int = 2, loader_workers: int = 2) -> dict[str, Any]:
    """Generate the corpus, fuzz every backend and the loader; returns the summary (``summary["passed"]``)."""
    backends = backends or available_decoders()
    started = time.perf_counter()
    cases = make_corpus(out, count, seed)
    paths = [str(c.path) for c in cases]
    outcomes = fuzz_backends(paths, backends, timeout, workers)
    summary = summarize(cases, outcomes)
    good_dir = Path(out) / "good"
    good_dir.mkdir(exist_ok=True)
    good = []
    for copy in range(good_copies):  # the seeds, under their own names, mixed into the loader's dataset
        for name in VIDEO_SEEDS:
            source = Path(out) / "seeds" / f"seed.{name}"
            target = good_dir / f"good_{copy}_{name}{source.suffix}"
            shutil.copyfile(source, target)
            good.append(str(target))
    # The loader only reads files that decoded cleanly or failed cleanly everywhere (a crashing file would
    # take the loader's worker down with it; those are already reported above).
    safe = [c for i, c in enumerate(paths)
            if all(outcomes[b][i].status in ("ok", "clean_error") for b in backends)]
    summary["loader"] = {}
    for backend in backends:
        result = loader_check(safe, good, backend, Path(out) / f"bad_files_{backend}.tsv", workers=loader_workers)
        summary["loader"][backend] = result
        if not loader_passed(result, len(safe) + len(good)):
            summary["problems"].append(f"loader with {backend}: {result}")
    summary["seconds"] = round(time.perf_counter() - started, 1)
    summary["passed"] = not summary["problems"]
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videossl.reliability.fuzz", description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=1000, help="number of broken files (default: 1000)")
    parser.add_argument("--out", default="videossl-fuzz", help="folder for the corpus and the report")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--backends", default="", help="comma-separated decoders (default: all available)")
    parser.add_argument("--timeout", type=float, default=30.0, help="seconds allowed per file and backend")
    parser.add_argument("--workers", type=int, default=2, help="decode worker processes")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    logging.getLogger("videossl.data").setLevel(logging.ERROR)  # skipped files go to bad_files_<backend>.tsv
    backends = [b for b in args.backends.split(",") if b] or None
    summary = run_fuzz(args.out, args.count, args.seed, backends, args.timeout, args.workers)
    names = list(summary["backends"])
    print(format_table(summary, names))
    for backend in names:
        print(f"{backend}: {summary['backends'][backend]}; loader: {summary['loader'][backend]}")
    for problem in summary["problems"]:
        print(f"PROBLEM {problem}")
    print(f"{summary['files']} files x {len(names)} backends in {summary['seconds']} s: "
          f"{'PASS' if summary['passed'] else 'FAIL'} ({len(summary['problems'])} problems)")
    (Path(args.out) / "summary.json").write_text(json.dumps(summary, indent=1, default=str))
    return 0 if summary["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
