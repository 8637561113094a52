"""The ``videossl`` command: pretrain, quickstart, list, plan, features, report, and the groups eval, data, bench,
show, search.

Every command is one row of ``COMMANDS`` below: ``Command(name, loader, help)``. The loader is a small function
that imports the command's ``(add_arguments, run)`` from the module that owns it with a plain ``from ... import``
(greppable, jump-to-definition works); only the invoked command's loader runs, so ``--help`` imports nothing heavy.
Adding a command is one loader plus one row. A user's mistake (``UserError``) prints one line and exits with code 2.
"""
from __future__ import annotations

import argparse
import logging
import os
import sys
from typing import Callable, NamedTuple

from . import __version__, recipes_dir, resolve_recipe
from .errors import UserError

AddArguments = Callable[[argparse.ArgumentParser], None]
Run = Callable[[argparse.Namespace], int]


class Command(NamedTuple):
    """One ``videossl [GROUP] NAME`` command; ``help`` is its only help text (``--help`` and the group listing)."""

    name: str
    load: Callable[[], tuple[AddArguments, Run]]
    help: str


# ----------------------------------------------------------------------------------------------- built-in commands


def add_pretrain_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("Pretrain from a YAML recipe, e.g. `videossl pretrain simclr_synthetic_tiny3d train.epochs=5 "
                          "data.num_frames=1`. Writes a run directory.")
    parser.add_argument("recipe", help="recipe file or name in recipes/")
    parser.add_argument("overrides", nargs="*", help="key=value overrides, e.g. optim.lr=0.01 train.resume=auto")


def run_pretrain(args: argparse.Namespace) -> int:
    from .config import load_pretrain_config
    from .engine.trainer import pretrain

    pretrain(load_pretrain_config(resolve_recipe(args.recipe), args.overrides))
    return 0


def add_quickstart_arguments(parser: argparse.ArgumentParser) -> None:
    parser.description = ("The README's main command: generate the synthetic dataset, pretrain a small 3D CNN, "
                          "evaluate it against random initialisation and print one table.")
    parser.add_argument("overrides", nargs="*", help="key=value overrides of the quickstart recipe")
    parser.add_argument("--out", default="runs/quickstart", help="output directory (default: runs/quickstart)")
    parser.add_argument("--no-supervised", action="store_true", help="skip the supervised upper bound (saves ~3 minutes)")


def run_quickstart(args: argparse.Namespace) -> int:
    from .quickstart import run_quickstart as quickstart

    quickstart(args.overrides, out_dir=args.out, supervised=not args.no_supervised)
    return 0


def add_list_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("topic", choices=("methods", "backbones", "datasets", "recipes"))
    parser.add_argument("--brief", action="store_true", help="recipes: one line each, without the reference section")


def run_list(args: argparse.Namespace) -> int:
    {"methods": list_methods, "backbones": list_backbones, "datasets": list_datasets,
     "recipes": list_recipes}[args.topic](args)
    return 0


def list_methods(args: argparse.Namespace) -> None:
    from .methods import METHODS

    for name, cls in METHODS.items():
        doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
        print(f"{name:14s} {doc}")


def list_backbones(args: argparse.Namespace) -> None:
    from .backbones import describe_backbones

    for row in describe_backbones():
        print(f"{row['name']:22s} {row['params'] / 1e6:8.2f}M  {row['input']:34s} {row.get('description', '')}")


def list_datasets(args: argparse.Namespace) -> None:
    from .data.datasets import READERS

    for name, reader in READERS.items():
        doc = (reader.__doc__ or "").strip().splitlines()
        print(f"{name:12s} {doc[0] if doc else ''}")
    print(f"{'synthetic':12s} procedural motion-defined video+audio dataset (generated on first use)")


def list_recipes(args: argparse.Namespace) -> None:
    from omegaconf import OmegaConf

    from .reference import format_reference

    shipped = recipes_dir()
    for path in sorted(shipped.glob("*.yaml")) + sorted((shipped / "eval").glob("*.yaml")):
        cfg = OmegaConf.load(path)
        if path.parent == shipped:
            name = path.stem
            what = (f"method={OmegaConf.select(cfg, 'method.name', default='?')} "
                    f"backbone={OmegaConf.select(cfg, 'backbone.name', default='?')}")
        else:
            name, what = f"eval/{path.stem}", "evaluation protocol"
        print(f"{name:40s} {what} data={OmegaConf.select(cfg, 'data.format', default='?')}")
        if not args.brief:
            ref = cfg.get("reference")
            for line in format_reference(OmegaConf.to_container(ref) if ref is not None else {}, indent=" " * 4):
                print(line)


# ----------------------------------------------------------------------------------------------- loaders
# One per command: the lazy import at the CLI boundary. Only the invoked command's loader runs.


def _pretrain():
    return add_pretrain_arguments, run_pretrain


def _quickstart():
    return add_quickstart_arguments, run_quickstart


def _list():
    return add_list_arguments, run_list


def _plan():
    from videossl.plan.command import add_arguments, run
    return add_arguments, run


def _features():
    from videossl.viz.features import add_arguments, run
    return add_arguments, run


def _report():
    from videossl.viz.report import add_arguments, run
    return add_arguments, run


def _eval_linear():
    from videossl.eval.commands import add_arguments, run_linear
    return add_arguments, run_linear


def _eval_knn():
    from videossl.eval.commands import add_arguments, run_knn
    return add_arguments, run_knn


def _eval_finetune():
    from videossl.eval.commands import add_arguments, run_finetune
    return add_arguments, run_finetune


def _eval_retrieval():
    from videossl.eval.commands import add_arguments, run_retrieval
    return add_arguments, run_retrieval


def _eval_attentive():
    from videossl.eval.commands import add_arguments, run_attentive
    return add_arguments, run_attentive


def _eval_frozen():
    from videossl.eval.commands import add_frozen_arguments, run_frozen
    return add_frozen_arguments, run_frozen


def _eval_audio_linear():
    from videossl.eval.av_commands import add_audio_linear_arguments, run_audio_linear_eval
    return add_audio_linear_arguments, run_audio_linear_eval


def _eval_av_retrieval():
    from videossl.eval.av_commands import add_run_arguments, run_retrieval
    return add_run_arguments, run_retrieval


def _eval_av_sync():
    from videossl.eval.av_commands import add_sync_arguments, run_sync
    return add_sync_arguments, run_sync


def _eval_av_localise():
    from videossl.eval.av_commands import add_localise_arguments, run_localise
    return add_localise_arguments, run_localise


def _eval_avc():
    from videossl.eval.avc import add_arguments, run
    return add_arguments, run


def _data_make_synthetic():
    from videossl.data.commands import add_make_synthetic_arguments, run_make_synthetic
    return add_make_synthetic_arguments, run_make_synthetic


def _data_stats():
    from videossl.data.stats import add_arguments, run
    return add_arguments, run


def _data_check():
    from videossl.data.commands import add_check_arguments, run_check
    return add_check_arguments, run_check


def _data_prepare():
    from videossl.data.commands import add_prepare_arguments, run_prepare
    return add_prepare_arguments, run_prepare


def _data_speech():
    from videossl.data.speech import add_arguments, run
    return add_arguments, run


def _bench_data():
    from videossl.bench.data import add_arguments, run
    return add_arguments, run


def _bench_train():
    from videossl.bench.train import add_arguments, run
    return add_arguments, run


def _bench_learn():
    from videossl.bench.learn import add_arguments, run
    return add_arguments, run


def _bench_factors():
    from videossl.bench.learn_factors import add_arguments, run
    return add_arguments, run


def _show_views():
    from videossl.viz.views import add_arguments, run
    return add_arguments, run


def _show_attention():
    from videossl.viz.attention import add_arguments, run
    return add_arguments, run


def _search_elo():
    from videossl.search.elo import add_arguments, run
    return add_arguments, run


# ----------------------------------------------------------------------------------------------- the table
# group (None: top level) -> commands, in the order ``--help`` lists them.
COMMANDS: dict[str | None, tuple[Command, ...]] = {
    None: (
        Command("pretrain", _pretrain, "pretrain an encoder from a recipe"),
        Command("quickstart", _quickstart, "synthetic data -> pretrain -> linear probe and kNN vs random init"),
        Command("list", _list, "list methods, backbones, datasets or recipes"),
        Command("features", _features, "extract embeddings of every video to .npy + CSV, with a t-SNE plot"),
        Command("report", _report, "write a static HTML report of a run directory"),
        Command("plan", _plan, "check and price a recipe: data, FLOPs, memory, GPU-hours, references"),
    ),
    "eval": (
        Command("linear", _eval_linear, "linear probe on frozen features (N clips x 3 crops test, top-1/top-5, t-SNE plot)"),
        Command("knn", _eval_knn, "weighted k-nearest-neighbour classifier on frozen features (cosine, k=20, T=0.07)"),
        Command("finetune", _eval_finetune, "fine-tune the whole network with a linear classifier"),
        Command("retrieval", _eval_retrieval, "video retrieval: test videos query training videos (R@1/5/10/20)"),
        Command("frozen", _eval_frozen, "linear probe, kNN and retrieval from one feature extraction"),
        Command("attentive", _eval_attentive,
                "attentive probe (V-JEPA): a learned query cross-attends to frozen patch tokens, then a linear layer"),
        Command("audio-linear", _eval_audio_linear,
                "linear probe on frozen audio features (ESC-50 folds, audio folders, CPC speaker probe)"),
        Command("av-retrieval", _eval_av_retrieval,
                "audio-visual retrieval of a run: clip -> audio and audio -> clip R@1/5/10"),
        Command("av-sync", _eval_av_sync, "does a run's AVC model prefer synchronised audio over shifted audio?"),
        Command("av-localise", _eval_av_localise, "AVE-Net sound-source localisation maps as PNG overlays"),
        Command("avc", _eval_avc, "held-out audio-visual correspondence accuracy (L3's metric) with its SE"),
    ),
    "data": (
        Command("make-synthetic", _data_make_synthetic, "write the procedural synthetic video+audio dataset"),
        Command("stats", _data_stats, "counts per split and class; annotation entries whose video is missing"),
        Command("check", _data_check, "decode-check every video of a dataset and report bad files"),
        Command("prepare", _data_prepare, "re-encode a dataset (short side, fps, keyframes) and write a manifest"),
        Command("speech", _data_speech, "synthesise a multi-speaker speech set with espeak-ng (CPC speaker probe)"),
    ),
    "bench": (
        Command("data", _bench_data, "data pipeline throughput vs pytorchvideo, per decoder"),
        Command("train", _bench_train, "training-step throughput and memory per method/backbone vs peers"),
        Command("learn", _bench_learn, "pretrain every synthetic recipe and evaluate against random init (table)"),
        Command("factors", _bench_factors, "what each method learns: appearance, motion, arrow of time (table)"),
    ),
    "show": (
        Command("views", _show_views, "PNG grid / GIF of the views a recipe's sampler and augmentation produce"),
        Command("attention", _show_attention, "CLS attention (ViTs) or activation maps (3D CNNs) over a video"),
    ),
    "search": (
        Command("elo", _search_elo, "evolutionary search of ELo loss weights with a Zipf-prior fitness"),
    ),
}


# ----------------------------------------------------------------------------------------------- parser


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    """The whole command tree; only the command named in ``argv`` gets its arguments (its loader runs)."""
    parser = argparse.ArgumentParser(prog="videossl", description="Self-supervised learning on video, audio and images.")
    parser.add_argument("--version", action="version", version=f"videossl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    words = [a for a in argv if not a.startswith("-")]
    for group, commands in COMMANDS.items():
        if group is None:
            target, invoked = sub, words[:1]
        else:
            gp = sub.add_parser(group, help=f"{group} commands: {', '.join(c.name for c in commands)}")
            target, invoked = gp.add_subparsers(dest="subcommand", metavar="SUBCOMMAND"), words[:2]
            target.required = True
        for command in commands:
            cp = target.add_parser(command.name, help=command.help, description=command.help)
            if invoked == ([command.name] if group is None else [group, command.name]):
                add_arguments, run = command.load()
                add_arguments(cp)
                cp.set_defaults(func=run)
    return parser


def _missing_dependency(error: ModuleNotFoundError) -> str | None:
    """One line for a third-party package that is not installed (e.g. ``pip install --no-deps``); None for a
    missing module of videossl itself, which is a bug and keeps its traceback."""
    if not error.name or error.name.split(".")[0] == "videossl":
        return None
    return (f"the Python package '{error.name.split('.')[0]}' is not installed; install videossl with its "
            f"dependencies (pip install videossl, or `make venv` in a clone)")


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    ours = logging.getLogger("videossl")
    if not ours.handlers:
        ours.addHandler(handler)
        ours.setLevel(logging.INFO)
        ours.propagate = False
    try:
        args = build_parser(argv).parse_args(argv)
        return int(args.func(args) or 0)
    except UserError as e:
        print(f"videossl: error: {e}", file=sys.stderr)
        return 2
    except ModuleNotFoundError as e:
        line = _missing_dependency(e)
        if line is None:
            raise
        print(f"videossl: error: {line}", file=sys.stderr)
        return 2
    except BrokenPipeError:  # e.g. `videossl list recipes | head`
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except KeyboardInterrupt:
        print("videossl: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
