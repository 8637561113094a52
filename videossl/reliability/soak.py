"""Memory soak: many random clip reads from a small dataset with each decoder; resident memory must stay bounded.

    python -m videossl.reliability.soak --reads 20000 [--backends decord,pyav,torchcodec] [--root DIR]

Each read picks a random file, a random 8-frame clip (stride 2) at full size or resized (short side 24), and
every 4th read also 0.5 s of audio. After ``--warmup`` reads (caches, allocator pools and FFmpeg's first-use
allocations settle) the resident set size (``VmRSS`` from ``/proc/self/status``) is the baseline; it is sampled
20 times more. ``growth_mb`` = last sample - baseline; ``slope_mb_per_1k`` = least-squares slope of the samples
per 1,000 reads. A backend passes when growth stays under ``--limit-mb``. With ``--trim`` glibc's freed heap
pages are returned (``malloc_trim``) before each sample, which separates fragmentation from leaks. The decord backend opens one reader
per call (decord leaks in long-lived readers), so this also checks that recycling holds memory flat.
"""
from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videossl.data import sampling as S
from videossl.data.datasets import DatasetIndex, VideoEntry
from videossl.data.decode import available_decoders, create_decoder, release_free_heap
from videossl.data.synthetic import ensure_synthetic
from videossl.data.video_dataset import VideoDataset


def rss_mb() -> float:
    """Resident set size of this process in MiB (Linux ``/proc``; 0.0 where unavailable)."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024.0
    except OSError:
        pass
    return 0.0


def soak_dataset(root: str | Path, videos: int = 8) -> list[str]:
    """A few 64 px, 2-3 s synthetic videos with audio (cached under ``root``); returns their paths."""
    folder = ensure_synthetic(root, num_pool=videos, num_train=0, num_test=0, size=64, min_seconds=2.0,
                              max_seconds=3.0, seed=0, workers=1, progress=False)
    paths = sorted(str(p) for p in (Path(folder) / "pool").rglob("*.mp4"))
    if not paths:
        raise RuntimeError(f"no videos under {folder}/pool")
    return paths


def dataset_reader(paths: list[str], backend: str, seed: int = 0):
    """``read(n, rng)``: one sample of a ``VideoDataset`` over ``paths`` (an 8-frame clip, stride 2, plus 0.5 s of
    audio), so the soak exercises the training path, its heap trimming (``TRIM_HEAP_EVERY``) included."""
    class ClipAndAudio(S.ClipSampler):
        def __call__(self, meta, rng):
            indices = S.random_clip(meta, 8, 2, rng)
            start, _ = S.frames_to_time(meta, indices)
            return S.SampledViews([S.video_view("clip", indices, "clip"),
                                   S.audio_view("audio", (start, start + 0.5), "audio")], {})

    views = S.ViewSpec(ClipAndAudio(), {"clip": lambda frames: frames, "audio": lambda wave: wave}, audio_rate=16000)
    dataset = VideoDataset(DatasetIndex([VideoEntry(p, 0) for p in paths], ["x"]), views, decoder=backend, seed=seed)

    def read(n: int, rng) -> None:
        sample = dataset[(int(rng.integers(len(paths))), n)]
        assert sample["video"][0].shape[0] == 8 and dataset.num_skipped == 0
    return read


def soak_backend(paths: list[str], backend: str, reads: int, warmup: int = 500, seed: int = 0,
                 samples: int = 20, trim: bool = False, through_dataset: bool = False) -> dict[str, Any]:
    """``reads`` random reads with ``backend``; returns RSS numbers (MiB), timing and any read errors.
    ``trim``: ``release_free_heap()`` before each RSS sample (so growth counts live memory only).
    ``through_dataset``: each read is a ``VideoDataset`` sample (``dataset_reader``) instead of a raw decode."""
    decoder = create_decoder(backend)
    read_sample = dataset_reader(paths, backend, seed) if through_dataset else None
    rng = np.random.default_rng(seed)
    metas = {p: decoder.probe(p) for p in paths}
    every = max(1, reads // samples)
    curve: list[tuple[int, float]] = []
    errors = 0
    baseline = None
    started = time.perf_counter()
    for n in range(warmup + reads):
        path = paths[int(rng.integers(len(paths)))]
        meta = metas[path]
        span = 8 * 2
        start = int(rng.integers(0, max(meta.num_frames - span, 0) + 1))
        indices = list(range(start, start + span, 2))
        try:
            if read_sample is not None:
                read_sample(n, rng)
            else:
                frames = decoder.frames(path, indices, short_side=None if rng.integers(2) else 24)
                assert frames.shape[0] == len(indices)
                if n % 4 == 0 and meta.has_audio:
                    decoder.audio(path, start / meta.fps, start / meta.fps + 0.5, 16000)
        except Exception:  # noqa: BLE001 - counted and reported; good files should never fail
            errors += 1
        sample_now = n == warmup - 1 or (warmup == 0 and n == 0) or (n >= warmup and (n - warmup + 1) % every == 0)
        if sample_now and trim:
            release_free_heap()
        if n == warmup - 1 or (warmup == 0 and n == 0):
            baseline = rss_mb()
            curve.append((0, baseline))
        elif n >= warmup and (n - warmup + 1) % every == 0:
            curve.append((n - warmup + 1, rss_mb()))
    seconds = time.perf_counter() - started
    xs = np.array([c[0] for c in curve], dtype=np.float64)
    ys = np.array([c[1] for c in curve], dtype=np.float64)
    slope = float(np.polyfit(xs, ys, 1)[0]) * 1000 if len(curve) > 2 else 0.0
    return {"backend": backend, "reads": reads, "warmup": warmup, "errors": errors, "trim": trim,
            "through_dataset": through_dataset,
            "baseline_mb": round(float(baseline or 0.0), 1), "final_mb": round(float(ys[-1]), 1),
            "peak_mb": round(float(ys.max()), 1), "growth_mb": round(float(ys[-1] - (baseline or 0.0)), 1),
            "slope_mb_per_1k": round(slope, 3), "reads_per_s": round((warmup + reads) / seconds, 1),
            "curve": [(int(x), round(float(y), 1)) for x, y in curve]}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m videossl.reliability.soak", description=__doc__.split("\n")[0])
    parser.add_argument("--reads", type=int, default=20000, help="reads per backend after warm-up (default: 20000)")
    parser.add_argument("--warmup", type=int, default=500, help="reads before the baseline (default: 500)")
    parser.add_argument("--backends", default="", help="comma-separated decoders (default: all available)")
    parser.add_argument("--root", default=None, help="dataset folder (default: $TMPDIR/videossl-soak)")
    parser.add_argument("--limit-mb", type=float, default=64.0, help="allowed RSS growth per backend (MiB)")
    parser.add_argument("--json", default=None, help="also write the results to this file")
    parser.add_argument("--trim", action="store_true",
                        help="malloc_trim(0) before each RSS sample: growth then counts live memory, not glibc's "
                             "freed-but-kept heap pages")
    parser.add_argument("--through-dataset", action="store_true",
                        help="read through VideoDataset (sampler, one decode per sample, its heap trimming) instead "
                             "of calling the decoder directly")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    root = args.root or os.path.join(tempfile.gettempdir(), "videossl-soak")
    paths = soak_dataset(root)
    backends = [b for b in args.backends.split(",") if b] or available_decoders()
    results, passed = [], True
    for backend in backends:
        result = soak_backend(paths, backend, args.reads, args.warmup, trim=args.trim,
                              through_dataset=args.through_dataset)
        result["passed"] = result["growth_mb"] < args.limit_mb and result["errors"] == 0
        passed &= result["passed"]
        results.append(result)
        print(f"{backend:>10}: {args.reads} reads ({result['reads_per_s']}/s), RSS {result['baseline_mb']} -> "
              f"{result['final_mb']} MiB (peak {result['peak_mb']}), growth {result['growth_mb']} MiB, "
              f"slope {result['slope_mb_per_1k']} MiB/1k reads, errors {result['errors']}: "
              f"{'PASS' if result['passed'] else 'FAIL'}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=1))
    return 0 if passed else 1


if __name__ == "__main__":
    sys.exit(main())
