"""``videossl bench data``: data pipeline throughput per decoder, against pytorchvideo's own dataset.

    videossl bench data [--root FOLDER] [--videos 48] [--size 128] [--video-seconds 4] [--seconds 5]
                        [--decoders decord,pyav,torchcodec] [--cases one,rho2,svt,clip_audio] [--write-doc]

Cases (the views a method asks for per sample): ``one`` one 8x4 clip; ``rho2`` two 8x8 clips
(Feichtenhofer et al., 2021); ``svt`` 2 global + 8 local clips (Ranasinghe et al., 2022, SVTSampler
defaults); ``clip_audio`` one clip plus 1 s of its audio. Ours: ``VideoDataset`` decodes the union of
all views' frames in ONE decoder call. Peer: ``pytorchvideo.data.LabeledVideoDataset`` (PyAV decoder,
its clip samplers; never ``pytorchvideo.transforms``), which decodes every clip's whole time span
separately. Both end with float ``(C, T, H, W)`` clips of the same frame counts, in one process with one
thread. Reported: clips/s, decoder calls per sample, ours/pytorchvideo, and each decoder's full-decode
frame rate on the same files (the ceiling).
"""
from __future__ import annotations

import argparse
import random
import sys
import time
from fractions import Fraction
from pathlib import Path

import torch

from videossl.data import sampling
from videossl.data.datasets import DatasetIndex, VideoEntry
from videossl.data.decode import available_decoders, create_decoder
from videossl.data.sampling import ViewSpec
from videossl.data.synthetic import ensure_synthetic
from videossl.data.video_dataset import VideoDataset
from videossl.errors import UserError

CASES = ("one", "rho2", "svt", "clip_audio")
AUDIO_RATE = 16000


def _our_sampler(case: str):
    return {
        "one": lambda: sampling.RandomClipSampler(num_frames=8, stride=4),
        "rho2": lambda: sampling.RhoClipSampler(rho=2, num_frames=8, stride=8),
        "svt": lambda: sampling.SVTSampler(),
        "clip_audio": lambda: sampling.AudioVisualSampler(num_frames=8, stride=4, audio_seconds=1.0),
    }[case]()


def _to_clip(frames):
    """uint8 ``(T, H, W, C)`` -> float ``(C, T, H, W)``: the minimum both pipelines must do."""
    return frames.permute(3, 0, 1, 2).float()


def bench_ours(paths: list[str], case: str, decoder: str, budget_s: float) -> dict:
    index = DatasetIndex([VideoEntry(p, 0) for p in paths], ["all"])
    spec = ViewSpec(_our_sampler(case), {"clip": _to_clip, "global": _to_clip, "local": _to_clip,
                                         "audio": lambda wave: wave}, AUDIO_RATE if case == "clip_audio" else None)
    dataset = VideoDataset(index, spec, decoder=decoder)
    samples, clips, started = 0, 0, time.perf_counter()
    while time.perf_counter() - started < budget_s or samples < len(paths):
        sample = dataset[(samples % len(paths), samples // len(paths))]
        clips += len(sample["video"])
        samples += 1
        if samples >= 20 * len(paths):
            break
    elapsed = time.perf_counter() - started
    return {"clips_per_s": clips / elapsed, "samples": samples, "decodes_per_sample": dataset.decode_calls / samples}


def _peer_sampler(case: str, fps: float):
    """pytorchvideo clip samplers covering the same spans as ours at ``fps``."""
    from pytorchvideo.data.clip_sampling import ClipInfoList, RandomClipSampler, RandomMultiClipSampler

    span = lambda frames, stride: Fraction((frames - 1) * stride + 1) / Fraction(fps).limit_denominator(1001)  # noqa: E731
    if case in ("one", "clip_audio"):
        return RandomClipSampler(span(8, 4)), [8]
    if case == "rho2":
        return RandomMultiClipSampler(span(8, 8), 2), [8, 8]

    class SVTClips(RandomClipSampler):  # 2 global + 8 local random clips, like videossl's SVTSampler
        spans = [span(8, 4), span(8, 8)] + [span(t, s) for t, s in zip((2, 4, 8) * 3, (2, 4, 8, 4, 8, 2, 8, 2))]

        def __call__(self, last_clip_time, video_duration, annotation):
            starts = [random.uniform(0, max(float(video_duration) - float(s), 0)) for s in self.spans]
            ends = [min(Fraction(st).limit_denominator(10000) + s, video_duration) for st, s in zip(starts, self.spans)]
            n = len(self.spans)
            return ClipInfoList([Fraction(st).limit_denominator(10000) for st in starts], ends, [0] * n, [0] * n,
                                [True] * n)

    return SVTClips(span(8, 8)), [8, 8] + [2, 4, 8, 2, 4, 8, 2, 4]


def bench_pytorchvideo(paths: list[str], case: str, fps: float, budget_s: float) -> dict:
    from pytorchvideo.data import LabeledVideoDataset

    sampler, frame_counts = _peer_sampler(case, fps)
    samples, clips, started = 0, 0, time.perf_counter()
    while time.perf_counter() - started < budget_s or samples < len(paths):
        dataset = LabeledVideoDataset([(p, {"label": 0}) for p in paths], sampler,
                                      video_sampler=torch.utils.data.SequentialSampler,
                                      decode_audio=case == "clip_audio", decoder="pyav")
        for sample in dataset:
            videos = sample["video"] if isinstance(sample["video"], list) else [sample["video"]]
            for video, count in zip(videos, frame_counts):  # same frame counts as ours: subsample the span
                picks = torch.linspace(0, video.shape[1] - 1, count).round().long()
                clips += 1
                video.index_select(1, picks).float()
            samples += 1
            if time.perf_counter() - started >= budget_s and samples >= len(paths):
                break
        if samples >= 20 * len(paths):
            break
    elapsed = time.perf_counter() - started
    return {"clips_per_s": clips / elapsed, "samples": samples, "decodes_per_sample": len(frame_counts)}


def full_decode_fps(paths: list[str], decoder_name: str) -> float:
    """Frames per second when a decoder decodes every frame of every file (the ceiling)."""
    decoder = create_decoder(decoder_name)
    frames, started = 0, time.perf_counter()
    for path in paths:
        count = decoder.probe(path).num_frames
        frames += len(decoder.frames(path, range(count)))
    return frames / (time.perf_counter() - started)


def run_benchmark(paths: list[str], fps: float, decoders: list[str], cases: list[str], budget_s: float,
                  peer: bool = True) -> list[dict]:
    rows = []
    if peer:  # warm up: first-use imports and FFmpeg initialisation are not part of any measurement
        bench_pytorchvideo(paths[:1], cases[0], fps, 0)
    for decoder in decoders:
        bench_ours(paths[:1], cases[0], decoder, 0)
    for case in cases:
        reference = bench_pytorchvideo(paths, case, fps, budget_s) if peer else None
        for decoder in decoders:
            ours = bench_ours(paths, case, decoder, budget_s)
            rows.append({"case": case, "decoder": decoder, **ours,
                         "peer_clips_per_s": reference["clips_per_s"] if reference else None,
                         "peer_decodes_per_sample": reference["decodes_per_sample"] if reference else None})
    return rows


def format_table(rows: list[dict], ceilings: dict[str, float]) -> str:
    lines = ["| case | decoder | ours clips/s | decodes/sample | pytorchvideo clips/s | decodes/sample | ours / pytorchvideo |",
             "|---|---|---:|---:|---:|---:|---:|"]
    for r in rows:
        peer = r["peer_clips_per_s"]
        ratio = f"{r['clips_per_s'] / peer:.2f}x" if peer else "-"
        peer_text = f"{peer:.1f}" if peer else "-"
        peer_dec = f"{r['peer_decodes_per_sample']:.0f}" if peer else "-"
        lines.append(f"| {r['case']} | {r['decoder']} | {r['clips_per_s']:.1f} | {r['decodes_per_sample']:.2f} | "
                     f"{peer_text} | {peer_dec} | {ratio} |")
    lines += ["", "| decoder | full-decode frames/s (ceiling) |", "|---|---:|"]
    lines += [f"| {name} | {value:.0f} |" for name, value in ceilings.items()]
    return "\n".join(lines)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--root", default=None, help="folder of videos (default: a synthetic set made for the bench)")
    parser.add_argument("--videos", type=int, default=48, help="number of videos (default: 48)")
    parser.add_argument("--size", type=int, default=128, help="synthetic frame size (default: 128)")
    parser.add_argument("--video-seconds", type=float, default=4.0, help="synthetic video length (default: 4)")
    parser.add_argument("--seconds", type=float, default=5.0, help="time budget per measurement (default: 5)")
    parser.add_argument("--decoders", default=None, help="comma list (default: every available decoder)")
    parser.add_argument("--cases", default=",".join(CASES), help=f"comma list of {', '.join(CASES)}")
    parser.add_argument("--no-peer", action="store_true", help="skip pytorchvideo")
    parser.add_argument("--write-doc", default=None, help="write the table to this markdown file")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    decoders = args.decoders.split(",") if args.decoders else available_decoders()
    for name in decoders:
        create_decoder(name)
    cases = args.cases.split(",")
    unknown = [c for c in cases if c not in CASES]
    if unknown:
        raise UserError(f"unknown bench case(s) {unknown}; choose from {', '.join(CASES)}")
    if args.root:
        paths = sorted(str(p) for p in Path(args.root).rglob("*.mp4"))[: args.videos]
    else:
        root = ensure_synthetic(num_pool=args.videos, num_train=0, num_test=0, size=args.size, fps=16,
                                min_seconds=args.video_seconds, max_seconds=args.video_seconds, seed=0)
        paths = sorted(str(p) for p in (root / "pool").glob("*.mp4"))
    if not paths:
        raise UserError(f"no .mp4 files under {args.root}")
    fps = create_decoder("pyav").probe(paths[0]).fps
    rows = run_benchmark(paths, fps, decoders, cases, args.seconds, peer=not args.no_peer)
    ceilings = {name: full_decode_fps(paths, name) for name in decoders}
    table = format_table(rows, ceilings)
    command = "videossl bench data " + " ".join(sys.argv[3:]) if len(sys.argv) > 3 else "videossl bench data"
    print(table)
    if args.write_doc:
        Path(args.write_doc).write_text(
            f"# Data pipeline benchmark\n\n{len(paths)} videos, {fps:g} fps. Command: `{command}`\n\n"
            f"Single process, `torch.set_num_threads(1)`; clips/s counts every view clip produced.\n\n{table}\n")
    return 0
