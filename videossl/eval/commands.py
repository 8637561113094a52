"""``videossl eval <protocol> [EVAL_RECIPE] ENCODER [key=value ...]`` subcommands.

EVAL_RECIPE (optional) is a paper's protocol under ``recipes/eval/`` (``eval/ucf101_finetune_rho`` or a YAML
path; ``--recipe`` does the same); ENCODER is an ``encoder.pt`` or ``random:<backbone>``; ``key=value`` overrides
any ``EvalConfig`` field, e.g. ``data.root=/data/ucf101 data.split=all test.num_clips=10``. Clip geometry that
neither the recipe nor the overrides set is the encoder's own. ``videossl.cli`` imports this module only when an eval
command runs, so ``--help`` stays fast.
"""
from __future__ import annotations

import argparse

from videossl.errors import UserError
from videossl.eval import attentive, finetune, frozen
from videossl.eval.config import EVAL_RECIPES_DIR, load_eval_config


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
    overrides = list(args.overrides)
    first = args.encoder
    is_recipe = first.endswith((".yaml", ".yml")) or first.startswith("eval/")
    if not is_recipe and not first.startswith("random:") and not first.endswith(".pt"):
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


def _config(args: argparse.Namespace):
    """The ``EvalConfig`` of ``[EVAL_RECIPE] ENCODER [key=value ...]``."""
    recipe, encoder, overrides = split_recipe_and_encoder(args)
    return load_eval_config(encoder, recipe, overrides)


def run_linear(args: argparse.Namespace) -> int:
    frozen.run_linear_probe(_config(args))
    return 0


def run_knn(args: argparse.Namespace) -> int:
    frozen.run_knn(_config(args))
    return 0


def run_retrieval(args: argparse.Namespace) -> int:
    frozen.run_retrieval(_config(args))
    return 0


def run_finetune(args: argparse.Namespace) -> int:
    finetune.run_finetune(_config(args))
    return 0


def run_attentive(args: argparse.Namespace) -> int:
    attentive.run_attentive_probe(_config(args))
    return 0


def run_frozen(args: argparse.Namespace) -> int:
    names = tuple(p.strip() for p in args.protocols.split(",") if p.strip())
    if not names:
        raise UserError("--protocols: give at least one of linear, knn, retrieval")
    frozen.run_frozen_protocols(_config(args), names)
    return 0
