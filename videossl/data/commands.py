"""``videossl data make-synthetic | check | prepare``.

    videossl data make-synthetic [ROOT] [--num-pool 600 --num-train 300 --num-test 150 --size 64 --seed 0]
    videossl data check SOURCE [--decoder decord] [--timeout 60] [--workers 2] [--report bad.txt]
    videossl data prepare SOURCE OUT [--short-side 128] [--fps 16] [--gop 16] [--workers 2]

SOURCE is a folder of videos (searched recursively; ``<class>/<file>`` gives the label), a CSV manifest
``path,label[,start,end]``, one video file, or with ``--format`` any dataset reader (``ucf101``, ``kinetics``...).
``check`` probes and decodes (first, middle and last frame, and a little audio) every file in worker
processes and kills a worker that takes longer than ``--timeout`` on one file, so a hanging file cannot
hang the scan; it prints one line per bad file and exits 1 if any. ``prepare`` re-encodes with the
``ffmpeg`` binary (argument list, no shell) to a short side, frame rate and keyframe interval, skips
outputs that already exist (resumable: each output is written to a temporary name and renamed when
complete) and writes ``OUT/manifest.csv`` (``path,label``; paths relative to OUT).
"""
from __future__ import annotations

import argparse
import math
import multiprocessing
import os
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from multiprocessing.connection import wait
from pathlib import Path
from typing import NamedTuple

import torch
from tqdm import tqdm

from videossl.data.datasets import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, read_dataset
from videossl.data.decode import DecodeError, create_decoder
from videossl.data.synthetic import ensure_synthetic, make_synthetic
from videossl.errors import UserError

VIDEO_SUFFIXES = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".ogv")


class Item(NamedTuple):
    """One input video: its path, label name ('' = unlabeled), optional segment and output name."""

    path: Path
    label: str
    start: float = 0.0
    end: float | None = None
    relpath: str = ""  # where `prepare` writes it, relative to OUT


def list_inputs(source: str, format: str | None = None, split: str = "train", annotations: str | None = None) -> list[Item]:
    """The videos of a folder (recursive), a CSV manifest, one video file, or a dataset reader's split."""
    src = Path(source).expanduser()
    if not src.exists():
        raise UserError(f"{src}: no such file or folder")
    if format is None and src.is_file() and _is_media_file(src):  # one video: check / prepare just that file
        return [Item(src, "", relpath=src.name)]
    if format is None and src.is_dir():
        files = sorted(p for p in src.rglob("*") if p.is_file() and p.suffix.lower() in VIDEO_SUFFIXES)
        if not files:
            raise UserError(f"{src}: no video files ({', '.join(VIDEO_SUFFIXES)}) in this folder")
        return [Item(p, p.parent.name if p.parent != src else "", relpath=str(p.relative_to(src))) for p in files]
    kwargs = {"annotations": annotations} if annotations else {}
    index = read_dataset(format or "csv", str(src), split=split, **kwargs)
    items = []
    for entry in index.entries:
        label = index.class_names[entry.label] if 0 <= entry.label < len(index.class_names) else ""
        path = Path(entry.path)
        rel = Path(label or "unlabeled") / path.name
        if entry.end is not None:  # a segment of a longer file gets its own output name
            rel = rel.with_name(f"{path.stem}_{int(entry.start):06d}_{int(entry.end):06d}{path.suffix}")
        items.append(Item(path, label, entry.start, entry.end, str(rel)))
    if not items:
        raise UserError(f"{src}: the {format or 'csv'} manifest lists no videos")
    return items


def _is_media_file(path: Path) -> bool:
    """A video (or audio) file by suffix or by content (MP4 / Matroska / AVI / Ogg signatures)."""
    if path.suffix.lower() in (*VIDEO_SUFFIXES, *VIDEO_EXTENSIONS, *AUDIO_EXTENSIONS):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(12)
    except OSError:
        return False
    return head[4:8] == b"ftyp" or head.startswith((b"\x1aE\xdf\xa3", b"RIFF", b"OggS"))


# ------------------------------------------------------------------------------------------- check


def check_file(path: str, decoder_name: str) -> str | None:
    """None when the file probes and decodes (first/middle/last frame, 0.5 s of audio); else the reason."""
    decoder = create_decoder(decoder_name)
    try:
        meta = decoder.probe(path)
        last = meta.num_frames - 1
        decoder.frames(path, [0, last // 2, last])
        if meta.has_audio:
            decoder.audio(path, 0.0, min(0.5, meta.duration), 16000)
    except DecodeError as error:
        return str(error)
    except Exception as error:  # a backend bug must not stop the scan; report it like a bad file
        return f"{path}: unexpected {type(error).__name__}: {str(error).splitlines()[0][:200] if str(error) else ''}"
    return None


def _check_worker(connection, decoder_name: str) -> None:
    torch.set_num_threads(1)
    while True:
        path = connection.recv()
        if path is None:
            return
        connection.send(check_file(path, decoder_name))


def check_files(paths: list[str], decoder_name: str = "decord", timeout: float = 60.0, workers: int = 2,
                progress: bool = True) -> dict[str, str]:
    """``{path: reason}`` for every bad file. Each file is checked in a worker process; a worker that
    spends more than ``timeout`` seconds on one file is killed and the file reported as hanging (``timeout``
    0: no limit, as ``data.decode_timeout_s=0``)."""

    context = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn")

    def start_worker():
        parent, child = context.Pipe()
        process = context.Process(target=_check_worker, args=(child, decoder_name), daemon=True)
        process.start()
        return [process, parent, None, 0.0]  # process, pipe, current path, start time

    bad: dict[str, str] = {}
    pending = list(reversed(paths))
    pool = [start_worker() for _ in range(max(1, min(workers, len(paths))))]
    bar = tqdm(total=len(paths), desc="check", unit="file", disable=not progress, file=sys.stderr)
    try:
        while pending or any(w[2] is not None for w in pool):
            for slot, worker in enumerate(pool):
                process, pipe, current, started = worker
                if current is None and pending:
                    worker[2], worker[3] = pending.pop(), time.monotonic()
                    pipe.send(worker[2])
                elif current is not None and pipe.poll():
                    reason = pipe.recv()
                    if reason is not None:
                        bad[current] = reason
                    worker[2] = None
                    bar.update()
                elif current is not None and ((timeout > 0 and time.monotonic() - started > timeout)
                                              or not process.is_alive()):
                    died = process.is_alive() is False and process.exitcode not in (None, 0)
                    bad[current] = (f"{current}: decoder crashed (exit code {process.exitcode})" if died
                                    else f"{current}: decoding took longer than {timeout:g} s (hangs?)")
                    process.kill()
                    process.join()
                    pool[slot] = start_worker()
                    bar.update()
            busy = [w[1] for w in pool if w[2] is not None]
            if busy and not any(w[2] is None and pending for w in pool):
                wait(busy, timeout=0.05)
    finally:
        for process, pipe, *_ in pool:
            try:
                pipe.send(None)
            except OSError:
                pass
            process.join(timeout=1)
            if process.is_alive():
                process.kill()
        bar.close()
    return bad


# ------------------------------------------------------------------------------------------- prepare


def ffmpeg_command(source: Path, target: Path, short_side: int | None, fps: float | None, gop: int,
                   crf: int = 23, start: float = 0.0, end: float | None = None, audio: bool = True,
                   threads: int = 1) -> list[str]:
    """The ``ffmpeg`` argument list re-encoding ``source`` to H.264 (+ mono AAC) in ``target``."""
    command = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
    if end is not None:
        command += ["-ss", f"{start:.3f}", "-to", f"{end:.3f}"]
    command += ["-i", str(source)]
    filters = []
    if short_side:
        # the shorter side becomes short_side; the other keeps the aspect ratio, rounded to even (yuv420p)
        filters.append(f"scale='if(lte(iw,ih),{short_side},-2)':'if(lte(iw,ih),-2,{short_side})'")
    if fps:
        filters.append(f"fps={fps:g}")
    if filters:
        command += ["-vf", ",".join(filters)]
    command += ["-c:v", "libx264", "-preset", "veryfast", "-crf", str(crf), "-pix_fmt", "yuv420p",
                "-g", str(gop), "-keyint_min", str(gop), "-sc_threshold", "0", "-threads", str(threads)]
    command += ["-c:a", "aac", "-ac", "1", "-b:a", "64k"] if audio else ["-an"]
    command += ["-movflags", "+faststart", "-f", "mp4", str(target)]
    return command


def prepare_one(item: Item, out: Path, short_side, fps, gop, crf, audio, timeout, threads) -> tuple[str, str | None]:
    """Re-encode one item; returns ``(relpath, error or None)``. Existing outputs are kept (resume)."""
    target = out / Path(item.relpath).with_suffix(".mp4")
    if target.exists() and target.stat().st_size > 0:
        return item.relpath, None
    target.parent.mkdir(parents=True, exist_ok=True)
    partial = target.with_name(f".{target.stem}.partial.mp4")
    command = ffmpeg_command(item.path, partial, short_side, fps, gop, crf, item.start, item.end, audio, threads)
    try:
        result = subprocess.run(command, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        partial.unlink(missing_ok=True)
        return item.relpath, f"{item.path}: ffmpeg took longer than {timeout:g} s"
    if result.returncode != 0 or not partial.exists():
        partial.unlink(missing_ok=True)
        message = (result.stderr.strip().splitlines() or ["no output"])[-1][:200]
        return item.relpath, f"{item.path}: ffmpeg failed ({message})"
    os.replace(partial, target)
    return item.relpath, None


def prepare_dataset(items: list[Item], out: str | Path, short_side: int | None = 128, fps: float | None = 16,
                    gop: int = 16, crf: int = 23, audio: bool = True, workers: int = 2, timeout: float = 600,
                    progress: bool = True) -> dict[str, str]:
    """Re-encode ``items`` under ``out`` in parallel and write ``out/manifest.csv``; ``{path: error}``."""

    if shutil.which("ffmpeg") is None:
        raise UserError("prepare needs the ffmpeg binary on PATH (e.g. `sudo apt-get install ffmpeg`)")
    out = Path(out).expanduser()
    out.mkdir(parents=True, exist_ok=True)
    threads = 1 if workers > 1 else 0  # parallel files, or all cores on one file
    errors, done = {}, {}
    with ThreadPoolExecutor(max(1, workers)) as pool:  # threads only wait on ffmpeg processes
        jobs = [pool.submit(prepare_one, item, out, short_side, fps, gop, crf, audio, timeout, threads) for item in items]
        for item, job in tqdm(zip(items, jobs), total=len(jobs), desc="prepare", unit="video", disable=not progress,
                              file=sys.stderr):
            relpath, error = job.result()
            if error:
                errors[str(item.path)] = error
            else:
                done[relpath] = item.label
    labeled = any(done.values())
    rows = ["path,label\n"] + [f"{Path(rel).with_suffix('.mp4').as_posix()},{label if labeled else -1}\n"
                               for rel, label in sorted(done.items())]
    partial = out / ".manifest.csv.partial"
    partial.write_text("".join(rows))
    os.replace(partial, out / "manifest.csv")
    return errors


# ------------------------------------------------------------------------------------------- CLI


def _add_source(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="folder of videos (recursive), a CSV manifest path,label[,start,end], "
                                       "one video file, or a dataset root with --format")
    parser.add_argument("--format", default=None, help="dataset reader for SOURCE (csv, ucf101, hmdb51, kinetics, ...)")
    parser.add_argument("--split", default="train", help="split to read with --format (default: train)")
    parser.add_argument("--annotations", default=None, help="folder with the annotation files, with --format")
    parser.add_argument("--workers", type=int, default=2, help="parallel worker processes (default: 2)")


def add_make_synthetic_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("root", nargs="?", default=None,
                        help="output folder (default: $VIDEOSSL_CACHE/synthetic-<hash>, reused when present)")
    for name, default in (("num-pool", 600), ("num-train", 300), ("num-test", 150), ("size", 64), ("fps", 16),
                          ("seed", 0), ("workers", 2)):
        parser.add_argument(f"--{name}", type=int, default=default, help=f"(default: {default})")
    parser.add_argument("--min-seconds", type=float, default=2.0, help="(default: 2.0)")
    parser.add_argument("--max-seconds", type=float, default=4.0, help="(default: 4.0)")


def run_make_synthetic(args: argparse.Namespace) -> int:
    params = dict(num_pool=args.num_pool, num_train=args.num_train, num_test=args.num_test, size=args.size,
                  fps=args.fps, min_seconds=args.min_seconds, max_seconds=args.max_seconds, seed=args.seed)
    started = time.perf_counter()
    if args.root is None:
        root = ensure_synthetic(**params, workers=args.workers)
    else:
        root = make_synthetic(args.root, **params, workers=args.workers)
    total = args.num_pool + args.num_train + args.num_test
    print(f"synthetic dataset: {root} ({total} videos, {time.perf_counter() - started:.1f} s)")
    return 0


def add_check_arguments(parser: argparse.ArgumentParser) -> None:
    _add_source(parser)
    parser.add_argument("--decoder", default="decord", help="decoder backend to check with (default: decord)")
    parser.add_argument("--timeout", type=float, default=60.0,
                        help="seconds allowed per file; 0: no limit (default: 60)")
    parser.add_argument("--report", default=None, help="also write the bad files' lines to this text file")


def run_check(args: argparse.Namespace) -> int:
    if not math.isfinite(args.timeout) or args.timeout < 0:
        raise UserError(f"--timeout must be >= 0 seconds (0: no limit), got {args.timeout:g}")
    create_decoder(args.decoder)  # unknown / unavailable backend: a UserError before any work
    items = list_inputs(args.source, args.format, args.split, args.annotations)
    bad = check_files([str(i.path) for i in items], args.decoder, args.timeout, args.workers)
    lines = [bad[p] for p in sorted(bad)]
    for line in lines:
        print(f"BAD {line}")
    if args.report:
        Path(args.report).write_text("".join(f"{line}\n" for line in lines))
    print(f"checked {len(items)} file{'' if len(items) == 1 else 's'} with {args.decoder}: {len(items) - len(bad)} good, "
          f"{len(bad)} bad")
    return 1 if bad else 0


def add_prepare_arguments(parser: argparse.ArgumentParser) -> None:
    _add_source(parser)
    parser.add_argument("out", help="output folder (re-encoded videos + manifest.csv)")
    parser.add_argument("--short-side", type=int, default=128, help="target shorter side in pixels; 0 keeps the size")
    parser.add_argument("--fps", type=float, default=16, help="target frame rate; 0 keeps the rate (default: 16)")
    parser.add_argument("--gop", type=int, default=16, help="keyframe interval in frames (default: 16)")
    parser.add_argument("--crf", type=int, default=23, help="x264 quality, lower is better (default: 23)")
    parser.add_argument("--no-audio", action="store_true", help="drop the audio track")
    parser.add_argument("--timeout", type=float, default=600, help="seconds allowed per file (default: 600)")


def run_prepare(args: argparse.Namespace) -> int:
    items = list_inputs(args.source, args.format, args.split, args.annotations)
    errors = prepare_dataset(items, args.out, args.short_side or None, args.fps or None, args.gop, args.crf,
                             not args.no_audio, args.workers, args.timeout)
    for path in sorted(errors):
        print(f"FAILED {errors[path]}")
    print(f"prepared {len(items) - len(errors)} of {len(items)} videos into {args.out} (manifest.csv)")
    return 1 if errors else 0
