"""The ``videossl`` command: pretrain, eval, data, bench, list, quickstart, show, search, features, report.

Group subcommands live in the modules that own them; each module exposes
``COMMANDS = {"name": (add_arguments, run, "help")}`` and is imported only when its command runs, so ``--help``
stays fast. A user's mistake (``UserError``) prints one line and exits with code 2.
"""
from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from pathlib import Path

from . import __version__, recipes_dir, resolve_recipe  # noqa: F401  (resolve_recipe: kept importable from here)
from .errors import UserError

# group -> command -> (module that owns it, help)
GROUPS: dict[str, dict[str, tuple[str, str]]] = {
    "eval": {
        "linear": ("videossl.eval.commands", "linear probe on frozen features (top-1/top-5, N clips x 3 crops)"),
        "knn": ("videossl.eval.commands", "k-nearest-neighbour classifier on frozen features (k=20, T=0.07)"),
        "finetune": ("videossl.eval.commands", "fine-tune the whole network with a classifier"),
        "retrieval": ("videossl.eval.commands", "video retrieval: test videos query training videos (R@1/5/10/20)"),
        "frozen": ("videossl.eval.commands", "linear probe, kNN and retrieval from one feature extraction"),
        "audio-linear": ("videossl.eval.av_commands", "linear probe on frozen audio features (ESC-50, speakers)"),
        "av-retrieval": ("videossl.eval.av_commands", "audio-visual retrieval of a run (clip->audio, audio->clip)"),
        "av-sync": ("videossl.eval.av_commands", "does an AVC model prefer synchronised over shifted audio?"),
        "av-localise": ("videossl.eval.av_commands", "AVE-Net sound-source localisation maps as PNG overlays"),
        "avc": ("videossl.eval.avc", "held-out audio-visual correspondence accuracy (L3's metric) with its SE"),
    },
    "data": {
        "make-synthetic": ("videossl.data.commands", "write the procedural synthetic video+audio dataset"),
        "stats": ("videossl.data.stats", "counts per split and class; annotation entries whose video is missing"),
        "check": ("videossl.data.commands", "decode-check every video of a dataset and report bad files"),
        "prepare": ("videossl.data.commands", "re-encode a dataset (short side, fps, keyframes) and write a manifest"),
        "speech": ("videossl.data.speech", "synthesise a multi-speaker speech set with espeak-ng (CPC probe)"),
    },
    "bench": {
        "data": ("videossl.bench.data", "data pipeline throughput vs pytorchvideo, per decoder"),
        "train": ("videossl.bench.train", "training-step throughput and memory per method/backbone vs peers"),
        "learn": ("videossl.bench.learn", "pretrain every method on synthetic data and evaluate (table)"),
    },
    "show": {
        "views": ("videossl.viz.views", "PNG grid / GIF of the views a recipe's sampler and augmentation produce"),
        "attention": ("videossl.viz.attention", "CLS attention (ViTs) or activation maps (3D CNNs) over a video"),
    },
    "search": {
        "elo": ("videossl.search.elo", "evolutionary search of ELo loss weights with a Zipf-prior fitness"),
    },
}
# top-level commands owned by other modules: name -> (module, help)
TOPLEVEL: dict[str, tuple[str, str]] = {
    "features": ("videossl.viz.features", "extract embeddings of every video to .npy + CSV, with a t-SNE plot"),
    "report": ("videossl.viz.report", "write a static HTML report of a run directory"),
    "plan": ("videossl.plan.command", "check and price a recipe: data, FLOPs, memory, GPU-hours, references"),
}
LIST_TOPICS = ("methods", "backbones", "datasets", "recipes")
RECIPES_DIR = recipes_dir()


# ----------------------------------------------------------------------------------------------- commands


def cmd_pretrain(args: argparse.Namespace) -> int:
    from .config import load_pretrain_config
    from .engine.trainer import pretrain

    cfg = load_pretrain_config(resolve_recipe(args.recipe), args.overrides)
    pretrain(cfg)
    return 0


def cmd_quickstart(args: argparse.Namespace) -> int:
    from .quickstart import run_quickstart

    run_quickstart(args.overrides, out_dir=args.out, supervised=not args.no_supervised)
    return 0


def cmd_list(args: argparse.Namespace) -> int:
    topic = args.topic
    if topic == "methods":
        from .methods import METHODS

        for name, cls in METHODS.items():
            doc = (sys.modules[cls.__module__].__doc__ or "").strip().splitlines()[0]
            print(f"{name:14s} {doc}")
    elif topic == "backbones":
        from . import backbones

        describe = getattr(backbones, "describe_backbones", None)
        if describe is None:
            for name in backbones.BACKBONES:
                print(name)
        else:
            for row in describe():
                print(f"{row['name']:22s} {row['params'] / 1e6:8.2f}M  {row['input']:34s} {row.get('description', '')}")
    elif topic == "datasets":
        from .data import datasets

        formats = getattr(datasets, "FORMATS", None) or getattr(datasets, "READERS", {})
        for name, reader in formats.items():
            doc = (getattr(reader, "__doc__", "") or "").strip().splitlines()
            print(f"{name:12s} {doc[0] if doc else ''}")
        print(f"{'synthetic':12s} procedural motion-defined video+audio dataset (generated on first use)")
    elif topic == "recipes":
        from omegaconf import OmegaConf

        from .reference import format_reference

        for path in sorted(RECIPES_DIR.glob("*.yaml")) + sorted((RECIPES_DIR / "eval").glob("*.yaml")):
            cfg = OmegaConf.load(path)
            name = path.stem if path.parent == RECIPES_DIR else f"eval/{path.stem}"
            if path.parent == RECIPES_DIR:
                method = OmegaConf.select(cfg, "method.name", default="?")
                backbone = OmegaConf.select(cfg, "backbone.name", default="?")
                what = f"method={method} backbone={backbone}"
            else:
                what = "evaluation protocol"
            print(f"{name:40s} {what} data={OmegaConf.select(cfg, 'data.format', default='?')}")
            if args.brief:
                continue
            ref = cfg.get("reference")
            for line in format_reference(OmegaConf.to_container(ref) if ref is not None else {}, indent=" " * 4):
                print(line)
    return 0


def _group_command(group: str | None, name: str):
    """Import the module that owns ``videossl [<group>] <name>`` and return its ``(add_arguments, run, help)``."""
    module_name = (GROUPS[group][name] if group else TOPLEVEL[name])[0]
    return importlib.import_module(module_name).COMMANDS[name]


# ----------------------------------------------------------------------------------------------- parser


def build_parser(argv: list[str]) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="videossl", description="Self-supervised learning on video, audio and images.")
    parser.add_argument("--version", action="version", version=f"videossl {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True

    p = sub.add_parser("pretrain", help="pretrain an encoder from a recipe",
                       description="Pretrain from a YAML recipe, e.g. `videossl pretrain simclr_synthetic_tiny3d "
                                   "train.epochs=5 data.num_frames=1`. Writes a run directory.")
    p.add_argument("recipe", help="recipe file or name in recipes/")
    p.add_argument("overrides", nargs="*", help="key=value overrides, e.g. optim.lr=0.01 train.resume=auto")
    p.set_defaults(func=cmd_pretrain)

    p = sub.add_parser("quickstart", help="synthetic data -> pretrain -> linear probe and kNN vs random init",
                       description="The README's main command: generate the synthetic dataset, pretrain a small 3D "
                                   "CNN, evaluate it against random initialisation and print one table.")
    p.add_argument("overrides", nargs="*", help="key=value overrides of the quickstart recipe")
    p.add_argument("--out", default="runs/quickstart", help="output directory (default: runs/quickstart)")
    p.add_argument("--no-supervised", action="store_true", help="skip the supervised upper bound (saves ~3 minutes)")
    p.set_defaults(func=cmd_quickstart)

    p = sub.add_parser("list", help="list methods, backbones, datasets or recipes")
    p.add_argument("topic", choices=LIST_TOPICS)
    p.add_argument("--brief", action="store_true", help="recipes: one line each, without the reference section")
    p.set_defaults(func=cmd_list)

    # commands owned by other modules: only the invoked one imports its module
    words = [a for a in argv if not a.startswith("-")]
    for name, (_, help_text) in TOPLEVEL.items():
        cp = sub.add_parser(name, help=help_text, description=help_text)
        if words[:1] == [name]:
            _attach(cp, None, name)
    for group, commands in GROUPS.items():
        gp = sub.add_parser(group, help=f"{group} commands: {', '.join(commands)}")
        gsub = gp.add_subparsers(dest="subcommand", metavar="SUBCOMMAND")
        gsub.required = True
        for name, (_, help_text) in commands.items():
            cp = gsub.add_parser(name, help=help_text, description=help_text)
            if words[:2] == [group, name]:
                _attach(cp, group, name)
    return parser


def _attach(parser: argparse.ArgumentParser, group: str | None, name: str) -> None:
    """Give ``parser`` the owning module's arguments and runner."""
    add_arguments, run, _ = _group_command(group, name)
    add_arguments(parser)
    parser.set_defaults(func=run)


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
