"""``videossl eval <protocol> [EVAL_RECIPE] ENCODER [key=value ...]`` subcommands.

EVAL_RECIPE (optional) is a paper's protocol under ``recipes/eval/`` (``eval/ucf101_finetune_rho`` or a YAML
path; ``--recipe`` does the same); ENCODER is an ``encoder.pt`` or ``random:<backbone>``; ``key=value`` overrides
any ``EvalConfig`` field, e.g. ``data.root=/data/ucf101 data.split=all test.num_clips=10``. Clip geometry that
neither the recipe nor the overrides set is the encoder's own. Heavy imports stay inside ``run`` (fast ``--help``).
"""
from __future__ import annotations

import argparse
from typing import Callable


def add_arguments(parser: argparse.ArgumentParser,
                  encoder_help: str = "optional eval recipe (recipes/eval/ name or YAML), then encoder.pt or "
                                      "random:<backbone>",
                  overrides_help: str = "config overrides, e.g. data.root=/data/ucf101 data.format=ucf101 data.split=all",
                  config_name: str = "EvalConfig") -> None:
    """``[EVAL_RECIPE] ENCODER [KEY=VALUE ...] [--recipe R]``, shared by every ``videossl eval`` protocol
    (``split_recipe_and_encoder`` tells the recipe from the encoder)."""
    parser.add_argument("encoder", metavar="[EVAL_RECIPE] ENCODER", help=encoder_help)
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help=overrides_help)
    parser.add_argument("--recipe", default=None, help=f"YAML file or recipes/eval name with {config_name} settings")


def split_recipe_and_encoder(args: argparse.Namespace) -> tuple[str | None, str, list[str]]:
    """``(recipe, encoder, overrides)`` from ``[EVAL_RECIPE] ENCODER [key=value ...]``: a first positional that
    names a YAML file or a recipe under ``recipes/eval/`` is the recipe, the next one the encoder."""
    from videossl.errors import UserError

    overrides = list(args.overrides)
    first = args.encoder
    is_recipe = first.endswith((".yaml", ".yml")) or first.startswith("eval/")
    if not is_recipe and not first.startswith("random:") and not first.endswith(".pt"):
        from videossl.eval.config import EVAL_RECIPES_DIR

        is_recipe = (EVAL_RECIPES_DIR / f"{first}.yaml").is_file()
    if not is_recipe:
        return args.recipe, first, overrides
    if args.recipe:
        raise UserError(f"two eval recipes given: {first} and --recipe {args.recipe}")
    if not overrides or "=" in overrides[0]:
        raise UserError(f"after the eval recipe {first}, give the encoder (encoder.pt or random:<backbone>)")
    return first, overrides[0], overrides[1:]


def add_frozen_arguments(parser: argparse.ArgumentParser) -> None:
    add_arguments(parser)
    parser.add_argument("--protocols", default="linear,knn,retrieval",
                        help="comma-separated frozen protocols sharing one feature extraction (default: all three)")


def _runner(protocol: str) -> Callable[[argparse.Namespace], int]:
    def run(args: argparse.Namespace) -> int:
        from videossl.eval import config, finetune, frozen

        recipe, encoder, overrides = split_recipe_and_encoder(args)
        cfg = config.load_eval_config(encoder, recipe, overrides)
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
