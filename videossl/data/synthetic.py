"""Procedural, seeded, Kinetics-like video+audio dataset written as real MP4 files (H.264 + AAC).

Twelve classes defined by motion and dynamics, not appearance: shapes, colours, stripe textures,
backgrounds (gradient, smooth noise, stripes, checker), sensor noise and 0-3 drifting distractor objects
are drawn at random for every video, so one frame says almost nothing about the class.

* irreversible (the arrow of time is visible): ``bounce`` (gravity, bounces lose energy), ``fall_stop``
  (falls, lands, slides to rest), ``expand`` (a blob spreads out and thins), ``fade_out``, ``split``
  (one object breaks into two that fly apart), ``collide`` (two objects meet and rebound slower);
* reversible: ``orbit``, ``zigzag``, ``pulse`` (periodic grow/shrink), ``rotate`` (a striped shape
  spinning in place), ``oscillate`` (pendulum arc), ``random_walk``.

Audio (16 kHz mono) is synchronised with the picture: every impact (bounce, landing, split, collision,
zigzag turn) makes a short decaying tone burst whose pitch falls with the object's size and whose
loudness follows the impact speed; ``orbit``/``pulse``/``fade_out`` hum (the hum follows the pulse and
the fade); ``expand`` starts with a noise swoosh; the other classes are background noise only.
So audio-visual correspondence and synchronisation are learnable.

Layout under ``root`` (see :func:`make_synthetic`)::

    pool/pool_000123.mp4                           unlabeled pretraining pool (flat)
    train/<class>/tr000000012_000000_000004.mp4    labeled sets, folder layout; the names follow
    test/<class>/te000000003_000000_000003.mp4     Kinetics' <youtube_id>_<start:06d>_<end:06d>.mp4
    splits/classInd.txt, trainlist01.txt, testlist01.txt
        UCF101-style; list paths are <class>/<file> relative to train/ (trainlist01) and test/
        (testlist01): read_dataset("ucf101", root, split, video_root=root/"train" or root/"test")
    kinetics/train.csv, kinetics/test.csv
        label,youtube_id,time_start,time_end,split; with annotations=root/"kinetics" and
        video_root=root the Kinetics reader finds train/<label>/<id>_000000_<end>.mp4
    synthetic.json                                 parameters, classes, counts (written last)
"""
from __future__ import annotations

import contextlib
import hashlib
import json
import math
import multiprocessing
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from fractions import Fraction
from pathlib import Path
from typing import Callable, NamedTuple

import av
import numpy as np
from tqdm import tqdm

from videossl.data.synthetic_scenes import CLASSES, IRREVERSIBLE, SAMPLE_RATE, render_video
from videossl.errors import UserError

__all__ = ["CLASSES", "IRREVERSIBLE", "SAMPLE_RATE", "make_synthetic", "ensure_synthetic", "read_info",
           "default_cache_dir", "render_video", "write_video"]

FORMAT_VERSION = 1  # bump when rendering changes, so cached datasets are regenerated


# ------------------------------------------------------------------------------------------------
# The dataset on disk
# ------------------------------------------------------------------------------------------------


class _Job(NamedTuple):
    relpath: str
    label: str
    split_code: int  # 0 pool, 1 train, 2 test: part of the per-video seed
    index: int
    seconds: float


def _render_job(job: _Job, root: str, size: int, fps: int, seed: int) -> str:
    # Each video has its own seed, so the output does not depend on worker scheduling.
    rng = np.random.default_rng(np.random.SeedSequence([seed, job.split_code, job.index, FORMAT_VERSION]))
    frames, audio = render_video(job.label, rng, size, fps, job.seconds)
    path = Path(root) / job.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames, fps, audio=audio, sample_rate=SAMPLE_RATE, gop=fps, threads=1)
    return job.relpath


def _plan(num_pool: int, num_train: int, num_test: int, fps: int, min_seconds: float, max_seconds: float,
          seed: int) -> list[_Job]:
    """Every video's path, class and length. Classes are balanced (round robin, then shuffled)."""
    rng = np.random.default_rng(np.random.SeedSequence([seed, 99]))
    jobs = []
    for split_code, split, count in ((0, "pool", num_pool), (1, "train", num_train), (2, "test", num_test)):
        labels = [CLASSES[i % len(CLASSES)] for i in range(count)]
        rng.shuffle(labels)
        for index, label in enumerate(labels):
            frames = int(round(rng.uniform(min_seconds, max_seconds) * fps))
            seconds = frames / fps
            if split == "pool":
                relpath = f"pool/pool_{index:06d}.mp4"
            else:  # Kinetics file names: <youtube_id>_<start:06d>_<end:06d>.mp4 (11-character ids)
                youtube_id = f"{split[:2]}{index:09d}"
                relpath = f"{split}/{label}/{youtube_id}_000000_{math.ceil(seconds):06d}.mp4"
            jobs.append(_Job(relpath, label, split_code, index, seconds))
    return jobs


def _write_annotations(root: Path, jobs: list[_Job]) -> None:
    (root / "splits").mkdir(exist_ok=True)
    (root / "kinetics").mkdir(exist_ok=True)
    (root / "splits" / "classInd.txt").write_text("".join(f"{i + 1} {c}\n" for i, c in enumerate(CLASSES)))
    for split in ("train", "test"):
        rows = [j for j in jobs if j.relpath.startswith(f"{split}/")]
        lines = []
        for job in rows:  # UCF101: trainlist has "<class>/<file> <1-based label>", testlist just the path
            rel = job.relpath.split("/", 1)[1]
            lines.append(f"{rel} {CLASSES.index(job.label) + 1}\n" if split == "train" else f"{rel}\n")
        (root / "splits" / f"{split}list01.txt").write_text("".join(lines))
        csv_lines = ["label,youtube_id,time_start,time_end,split\n"]
        for job in rows:
            youtube_id, _, end = Path(job.relpath).stem.split("_")
            csv_lines.append(f"{job.label},{youtube_id},0,{int(end)},{split}\n")
        (root / "kinetics" / f"{split}.csv").write_text("".join(csv_lines))


def _content_params(num_pool, num_train, num_test, size, fps, min_seconds, max_seconds, seed) -> dict:
    if min(num_pool, num_train, num_test) < 0 or size < 8 or fps < 1 or not 0 < min_seconds <= max_seconds:
        raise UserError(f"synthetic: bad sizes (num_pool={num_pool}, num_train={num_train}, num_test={num_test}, "
                        f"size={size}, fps={fps}, seconds={min_seconds}..{max_seconds})")
    return {"num_pool": int(num_pool), "num_train": int(num_train), "num_test": int(num_test), "size": int(size),
            "fps": int(fps), "min_seconds": float(min_seconds), "max_seconds": float(max_seconds),
            "seed": int(seed), "format_version": FORMAT_VERSION}


def make_synthetic(root: str | os.PathLike, *, num_pool: int = 600, num_train: int = 300, num_test: int = 150,
                   size: int = 64, fps: int = 16, min_seconds: float = 2.0, max_seconds: float = 4.0,
                   seed: int = 0, workers: int = 2, progress: bool = True) -> Path:
    """Write the synthetic dataset under ``root`` (layout in the module docstring) and return ``root``.

    Generation happens in a sibling temporary folder that is renamed to ``root`` at the end, so a killed
    run never leaves a folder that looks finished. An existing synthetic dataset at ``root`` is replaced;
    any other non-empty folder is refused.
    """
    params = _content_params(num_pool, num_train, num_test, size, fps, min_seconds, max_seconds, seed)

    def build(partial: Path) -> None:
        jobs = _plan(num_pool, num_train, num_test, fps, min_seconds, max_seconds, seed)
        _run_jobs(jobs, partial, size, fps, seed, workers, progress)
        _write_annotations(partial, jobs)
        info = {"params": params, "classes": list(CLASSES), "irreversible": sorted(IRREVERSIBLE),
                "sample_rate": SAMPLE_RATE, "counts": {"pool": num_pool, "train": num_train, "test": num_test},
                "pool_labels": [CLASSES.index(j.label) for j in jobs if j.split_code == 0]}
        (partial / "synthetic.json").write_text(json.dumps(info, indent=1))

    return build_atomically(root, "synthetic.json", "synthetic dataset", build)


def build_atomically(root: str | os.PathLike, marker: str, what: str, build: Callable[[Path], None]) -> Path:
    """``build(folder)`` writes a dataset into a sibling temporary folder, which then replaces ``root``; returns root.

    A killed run never leaves a folder that looks finished. An existing dataset at ``root`` (one holding the file
    ``marker``) is replaced; any other non-empty folder is refused (``what`` names the dataset in that message).
    """
    root = Path(root).expanduser().absolute()
    if root.exists() and any(root.iterdir()) and not (root / marker).exists():
        raise UserError(f"{root}: exists, is not empty and is not a {what}; choose another folder")
    root.parent.mkdir(parents=True, exist_ok=True)
    partial = root.parent / f".{root.name}.partial-{os.getpid()}"
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir()
    try:
        build(partial)
        if root.exists():  # an older dataset (or an empty folder): move aside, then swap in
            old = root.parent / f".{root.name}.old-{os.getpid()}"
            os.replace(root, old)
            shutil.rmtree(old, ignore_errors=True)
        os.replace(partial, root)
    finally:
        shutil.rmtree(partial, ignore_errors=True)
    return root


def _run_jobs(jobs: list, root: Path, size: int, fps: int, seed: int, workers: int, progress: bool,
              render: Callable | None = None, desc: str = "synthetic videos") -> None:
    """``render(job, root, size, fps, seed)`` for every job (default ``_render_job``), in ``workers`` processes."""
    render = render or _render_job
    bar = tqdm(total=len(jobs), desc=desc, unit="video", disable=not progress)
    if workers <= 1:
        for job in jobs:
            render(job, str(root), size, fps, seed)
            bar.update()
    else:
        # fork: workers start instantly and inherit the imports (numpy, av); spawn where fork is absent
        method = "fork" if "fork" in multiprocessing.get_all_start_methods() else "spawn"
        with ProcessPoolExecutor(workers, mp_context=multiprocessing.get_context(method)) as pool:
            chunk = max(1, len(jobs) // (workers * 8))
            for _ in pool.map(render, jobs, *zip(*[(str(root), size, fps, seed)] * len(jobs)), chunksize=chunk):
                bar.update()
    bar.close()


def default_cache_dir() -> Path:
    """``$VIDEOSSL_CACHE`` or ``~/.cache/videossl``."""
    return Path(os.environ.get("VIDEOSSL_CACHE") or Path.home() / ".cache" / "videossl").expanduser()


def read_info(root: str | os.PathLike) -> dict | None:
    """The ``synthetic.json`` of a finished dataset, or None."""
    try:
        return json.loads((Path(root) / "synthetic.json").read_text())
    except (OSError, ValueError):
        return None


def ensure_synthetic(root: str | os.PathLike | None = None, **kw) -> Path:
    """The synthetic dataset with these parameters, generated only when missing or different.

    root: default ``$VIDEOSSL_CACHE/synthetic-<hash of the parameters>``. ``kw``: as :func:`make_synthetic`
    (``workers``/``progress`` do not change the content and are not part of the cache key).
    """
    defaults = dict(num_pool=600, num_train=300, num_test=150, size=64, fps=16, min_seconds=2.0, max_seconds=4.0, seed=0)
    unknown = set(kw) - set(defaults) - {"workers", "progress"}
    if unknown:
        raise UserError(f"ensure_synthetic: unknown parameters {sorted(unknown)}; known: {sorted(defaults)}")
    params = _content_params(**{k: kw.get(k, v) for k, v in defaults.items()})
    return ensure_cached(root, params, "synthetic", read_info, lambda path: make_synthetic(path, **kw))


def ensure_cached(root: str | os.PathLike | None, params: dict, prefix: str,
                  read: Callable[[Path], dict | None], make: Callable[[Path], Path]) -> Path:
    """The dataset at ``root`` whose info file (``read(root)``) records ``params``, else ``make(root)`` under a lock.

    root None: ``default_cache_dir() / "<prefix>-<hash of params>"``.
    """
    if root is None:
        digest = hashlib.sha1(json.dumps(params, sort_keys=True).encode()).hexdigest()[:10]
        root = default_cache_dir() / f"{prefix}-{digest}"
    root = Path(root).expanduser()
    info = read(root)
    if info is not None and info.get("params") == params:
        return root
    root.parent.mkdir(parents=True, exist_ok=True)
    try:
        # One generator per dataset: DDP ranks and parallel jobs that start together wait here for the first one,
        # instead of rendering it again and swapping the folder under a process that already reads it.
        with _exclusive_lock(root.parent / f".{root.name}.lock"):
            info = read(root)
            if info is not None and info.get("params") == params:
                return root
            return make(root)
    except OSError:  # no file locks (some network filesystems) and another process finished it first
        info = read(root)
        if info is not None and info.get("params") == params:
            return root
        raise


@contextlib.contextmanager
def _exclusive_lock(path: Path):
    """An exclusive ``flock`` on ``path`` for the ``with`` body (no-op where ``fcntl`` does not exist)."""
    try:
        import fcntl  # optional: POSIX only
    except ImportError:  # not POSIX: no cross-process lock; ensure_synthetic's rename fallback still applies
        yield
        return
    with open(path, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# ------------------------------------------------------------------------------------------------
# Writing MP4 files
# ------------------------------------------------------------------------------------------------


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float,
    *,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    gop: int | None = None,
    crf: int | None = 23,
    threads: int = 0,
) -> Path:
    """Write ``frames`` (uint8 ``(T, H, W, C)`` RGB, or ``(T, H, W)`` gray) as a video with PyAV.

    audio: optional float ``(samples,)`` or ``(1, samples)`` mono waveform in [-1, 1], encoded as AAC
    at ``sample_rate`` (the container then holds a video and an audio stream on the same clock).
    codec / pix_fmt: libx264 needs even sizes with yuv420p; use ``yuv444p`` for odd sizes, or
    ``ffv1`` + ``gray`` in ``.mkv`` for true grayscale. gop: keyframe interval in frames.
    threads: encoder threads (0 = FFmpeg's choice; 1 when many processes encode at once).
    """
    path = Path(path)
    frames = np.asarray(frames, dtype=np.uint8)
    gray_input = frames.ndim == 3
    if frames.ndim not in (3, 4) or len(frames) == 0:
        raise ValueError(f"{path}: frames must be (T, H, W[, C]) with T >= 1, got {frames.shape}")
    height, width = frames.shape[1:3]
    # PyAV wants a Fraction-like rate; integer fps is the common case and keeps the time base exact.
    rate = int(fps) if float(fps).is_integer() else fps
    options = {} if crf is None or codec != "libx264" else {"crf": str(crf)}
    # faststart: the index (moov) goes first, so a truncated file still opens and shows as truncated
    muxer_options = {"movflags": "faststart"} if path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
    with av.open(str(path), "w", options=muxer_options) as container:
        video = container.add_stream(codec, rate=Fraction(rate).limit_denominator(1001), options=options)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if gop is not None:
            video.gop_size = int(gop)
        if threads:
            video.codec_context.thread_count = int(threads)
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=sample_rate)
            audio_stream.layout = "mono"
        for frame_array in frames:
            fmt = "gray" if gray_input else "rgb24"
            frame = av.VideoFrame.from_ndarray(frame_array, format=fmt)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio_stream is not None:
            _encode_audio(container, audio_stream, np.asarray(audio, dtype=np.float32).reshape(-1), sample_rate)
    return path


def _encode_audio(container, stream, wave: np.ndarray, sample_rate: int) -> None:
    """AAC encoders take fixed-size frames (1024 samples); the last one may be shorter."""
    chunk = stream.codec_context.frame_size or 1024
    wave = np.clip(wave, -1.0, 1.0)
    for start in range(0, len(wave), chunk):
        piece = wave[start : start + chunk][None, :]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
