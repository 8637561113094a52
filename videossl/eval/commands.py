"""``videossl eval <protocol> ENCODER [key=value ...] [--recipe R]`` subcommands.

ENCODER is an ``encoder.pt`` or ``random:<backbone>``; ``key=value`` overrides any ``EvalConfig`` field,
e.g. ``data.format=ucf101 data.root=/data/ucf101 data.split=all test.num_clips=10``.
Heavy imports stay inside ``run`` so ``--help`` is fast.
"""
from __future__ import annotations

import argparse
from typing import Callable


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("encoder", metavar="ENCODER", help="encoder.pt from pretraining, or random:<backbone>")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE",
                        help="config overrides, e.g. data.root=/data/ucf101 data.format=ucf101 data.split=all")
    parser.add_argument("--recipe", default=None, help="YAML file with EvalConfig settings (overrides win)")


def add_frozen_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    parser.add_argument("--protocols", default="linear,knn,retrieval",
                        help="comma-separated frozen protocols sharing one feature extraction (default: all three)")


def _runner(protocol: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from videossl.eval import config, finetune, frozen

        cfg = config.load_eval_config(args.encoder, args.recipe, list(args.overrides))
        if protocol == "frozen":
            from videossl.errors import UserError

            names = tuple(p.strip() for p in args.protocols.split(",") if p.strip())
            if not names:
                raise UserError("--protocols: give at least one of linear, knn, retrieval")
            frozen.run_frozen_protocols(cfg, names)
        elif protocol == "finetune":
            finetune.run_finetune(cfg)
        else:
            {"linear": frozen.run_linear_probe, "knn": frozen.run_knn, "retrieval": frozen.run_retrieval}[protocol](cfg)
        return 0

    return run


COMMANDS = {
    "linear": (add_arguments, _runner("linear"),
               "linear probe on frozen features (N clips x 3 crops test, top-1/top-5, t-SNE plot)"),
    "knn": (add_arguments, _runner("knn"), "weighted kNN on frozen features (cosine, k=20, T=0.07)"),
    "finetune": (add_arguments, _runner("finetune"), "fine-tune the whole network with a linear classifier"),
    "retrieval": (add_arguments, _runner("retrieval"), "test videos query training videos: R@1/5/10/20"),
    "frozen": (add_frozen_arguments, _runner("frozen"),
               "linear probe, kNN and retrieval from one feature extraction"),
}
