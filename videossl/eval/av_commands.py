"""``videossl eval audio-linear | av-retrieval | av-sync | av-localise`` subcommands (audio and audio-visual).

    videossl eval audio-linear runs/avid-x/encoder_audio.pt data.format=esc50 data.root=/data/ESC-50 data.seconds=5
    videossl eval audio-linear eval/esc50_linear runs/l3-x/encoder_audio.pt data.root=/data/ESC-50 data.test_fold=2
    videossl eval audio-linear runs/cpc-x/encoder.pt data.format=audio data.root=/data/speech data.test_fraction=0.3
    videossl eval av-retrieval runs/avid-x                 # test videos: clip <-> audio R@1/5/10
    videossl eval av-sync runs/l3-x --offset 1.0           # synchronised vs shifted audio (chance 50%)
    videossl eval av-localise runs/avenet-x --out loc/     # sound-source localisation PNG overlays

``videossl.cli`` imports this module only when one of these commands runs, so ``--help`` stays fast.
"""
from __future__ import annotations

import argparse

from .audio import load_audio_eval_config, run_audio_linear
from .av_retrieval import run_av_localise, run_av_retrieval, run_av_sync
from .commands import add_arguments, split_recipe_and_encoder


def add_audio_linear_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser, "optional eval recipe (e.g. eval/esc50_linear), then encoder_audio.pt (audio-visual run), "
                          "encoder.pt (CPC) or random:<audio backbone>",
                  "AudioEvalConfig overrides, e.g. data.format=esc50 data.root=/data/ESC-50 data.test_fold=1",
                  "AudioEvalConfig")


def run_audio_linear_eval(args: argparse.Namespace) -> int:
    recipe, encoder, overrides = split_recipe_and_encoder(args)
    run_audio_linear(load_audio_eval_config(encoder, recipe, overrides))
    return 0


def add_run_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("run_dir", metavar="RUN_DIR", help="an audio-visual pretraining run directory (config.yaml, encoder.pt, "
                        "encoder_audio.pt and its pair head encoder_avc_head.pt / encoder_av_head.pt)")
    parser.add_argument("overrides", nargs="*", metavar="data.KEY=VALUE",
                        help="replace the run's data settings, e.g. data.root=/data/ks data.format=kinetics")
    parser.add_argument("--split", default="test", help="split to evaluate on (default: test)")
    parser.add_argument("--max-videos", type=int, default=0, help="use only the first N videos (0: all)")
    parser.add_argument("--out", default=None, help="folder for the JSON result (PNG overlays for av-localise)")


def add_sync_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    parser.add_argument("--offset", type=float, default=1.0, help="shift of the negative audio in seconds (default 1.0)")
    parser.add_argument("--clips-per-video", type=int, default=1,
                        help="clip times per video, each one synchronised-vs-shifted pair (default 1)")


def add_localise_arguments(parser: argparse.ArgumentParser) -> None:
    add_run_arguments(parser)
    parser.add_argument("--num-videos", type=int, default=8, help="clips to draw (default 8)")


def run_retrieval(args: argparse.Namespace) -> int:
    run_av_retrieval(args.run_dir, args.split, args.max_videos, data_overrides=args.overrides, out_dir=args.out)
    return 0


def run_sync(args: argparse.Namespace) -> int:
    run_av_sync(args.run_dir, args.offset, args.split, args.max_videos, data_overrides=args.overrides, out_dir=args.out,
                clips_per_video=args.clips_per_video)
    return 0


def run_localise(args: argparse.Namespace) -> int:
    run_av_localise(args.run_dir, args.out or "localisation", args.num_videos, args.split,
                    data_overrides=args.overrides)
    return 0
