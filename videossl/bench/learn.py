"""``videossl bench learn``: pretrain each method on the synthetic dataset and check it beats random init.

    videossl bench learn [--recipes simclr_synthetic_tiny3d byol_synthetic_tiny3d ...] [--all]
                         [--out runs/bench-learn] [--epochs N] [--max-steps N] [--tiny] [--set key=value ...]
                         [--threads N] [--write-doc docs/benchmarks-learn.md]

Per recipe (``--all``: every ``recipes/*_synthetic_*.yaml``):

1. pretrain with :func:`videossl.engine.trainer.pretrain` into ``<out>/<recipe>/pretrain`` with
   ``train.resume=auto``, so a rerun resumes an interrupted run and skips a finished one;
2. linear probe + kNN (:func:`videossl.eval.frozen.run_frozen_protocols`) of the pretrained encoder on the
   synthetic labeled train/test sets, with the pretraining clip geometry (the quickstart's
   ``eval.synthetic_protocol.eval_data_overrides``) and the quickstart's test views and classifier settings;
3. the same two protocols for the same backbone (name and kwargs, e.g. residual-frame input) at random
   initialisation seeded like the run (the quickstart's ``write_random_init``), once per architecture and
   evaluation setting, cached in ``<out>/random-<backbone>[-<kwargs hash>].json``;
4. for a run with an audio tower (``<run_dir>/encoder_audio.pt``: L3, AVE-Net, AVID, BraVe V/A, ELo), the audio
   linear probe of the audio tower and of the same audio backbone at random initialisation (``learn_audio.py``:
   the synthetic sets' audio tracks, the run's audio rate, mel bands and window length; the baseline cached in
   ``<out>/random-audio-<backbone>[-<kwargs hash>].json``).

The table (recipe, method, backbone, linear / kNN top-1 of the SSL encoder and of random init, whether SSL
beats random init on both, audio linear top-1 of the audio tower and of its random init, pretraining minutes) is printed and written to ``<out>/learn.json`` and
``<out>/learn.md`` after every recipe; rows of earlier invocations with the same ``--out`` are kept (a
recipe's row is replaced when it is run again), so later issues add their recipes' rows to the same table.
``--tiny`` shrinks everything (32 px, 4 frames, a few videos, 2 steps, 5 linear epochs) for CI.

The evaluation's synthetic test split has ``--num-test`` videos (default 600; the pretraining recipes' 150 left one
binomial standard error at ~4 points, larger than the margins some rows are judged by). Only the evaluation sees the
larger split: the pretraining config, and so a finished run's checkpoint, is unchanged.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import logging
import math
import os
import platform
import shlex
import sys
import time
from pathlib import Path
from typing import Any, Callable

import torch
import yaml
from omegaconf import OmegaConf

from videossl import recipes_dir
from videossl.config import load_pretrain_config, to_yaml
from videossl.engine.checkpoint import load_checkpoint
from videossl.engine.run_logger import read_metrics
from videossl.engine.trainer import pretrain
from videossl.errors import UserError
from videossl.eval.config import load_eval_config
from videossl.eval.frozen import run_frozen_protocols
from videossl.eval.synthetic_protocol import EVAL_OVERRIDES, eval_data_overrides, write_random_init

from .learn_audio import bench_audio
from .learn_cache import backbone_tag, cached_top1, with_num_test  # noqa: F401  (with_num_test: tests use learn.*)

RECIPES_DIR = recipes_dir()
SYNTHETIC_GLOB = "*_synthetic_*.yaml"

# The CI-sized run: a few 32 px videos (12 classes: one training video per class), 4-frame clips, two steps.
TINY_DATA = ["data.synthetic.num_pool=8", "data.synthetic.num_train=12", "data.synthetic.num_test=12",
             "data.synthetic.size=32", "data.crop_size=32", "data.num_frames=4", "data.frame_stride=1",
             "data.num_workers=0"]
TINY_TRAIN = ["train.batch_size=4", "train.max_steps=2", "train.epochs=1", "train.log_every=1", "train.plots=false"]
DEFAULT_NUM_TEST = 600  # test videos of the evaluation (50 per class): one binomial SE ~2 points at 40%
TINY_EVAL = ["test.num_clips=1", "test.num_crops=1", "linear.train_clips=1", "linear.epochs=5", "data.batch_size=4"]

COLUMNS = ("recipe", "method", "backbone", "linear_top1", "knn_top1", "random_linear_top1", "random_knn_top1",
           "beats_random", "audio_linear_top1", "random_audio_linear_top1", "audio_beats_random", "pretrain_minutes")

log = logging.getLogger("videossl.bench.learn")


# ------------------------------------------------------------------------------------------------
# Recipes
# ------------------------------------------------------------------------------------------------


def find_recipes(names: list[str] | None, all_synthetic: bool, recipes_dir: Path = RECIPES_DIR) -> list[Path]:
    """Recipe names (``simclr_synthetic_tiny3d``, with or without ``.yaml``) or paths -> existing files.

    ``all_synthetic`` adds every ``recipes/*_synthetic_*.yaml`` (sorted). A name that matches no file raises
    ``UserError`` naming it and the synthetic recipes that exist.
    """
    paths: list[Path] = sorted(recipes_dir.glob(SYNTHETIC_GLOB)) if all_synthetic else []
    for name in names or []:
        candidates = [Path(name), recipes_dir / name, recipes_dir / f"{name}.yaml"]
        found = next((c for c in candidates if c.is_file()), None)
        if found is None:
            known = ", ".join(p.stem for p in sorted(recipes_dir.glob(SYNTHETIC_GLOB)))
            raise UserError(f"--recipes: no recipe '{name}' (file or name in {recipes_dir}); synthetic recipes: {known}")
        if found.resolve() not in [p.resolve() for p in paths]:
            paths.append(found)
    if not paths:
        raise UserError("bench learn: give --recipes NAME [NAME ...] or --all")
    return paths


def recipe_overrides(tiny: bool, out: Path, epochs: int | None, max_steps: int | None, extra: list[str]) -> list[str]:
    """Pretraining overrides shared by every recipe of one invocation (run dir and resume are added per recipe)."""
    overrides = ["train.progress=false"]
    if tiny:
        overrides += TINY_DATA + [f"data.root={out / 'synthetic-tiny'}"] + TINY_TRAIN
    if epochs is not None:
        overrides.append(f"train.epochs={epochs}")
    if max_steps is not None:
        overrides.append(f"train.max_steps={max_steps}")
    return overrides + list(extra)


def check_recipes(recipes: list[Path], overrides: list[str]) -> None:
    """Load every recipe with the overrides; raise ``UserError`` naming the first that is invalid or not synthetic."""
    for recipe in recipes:
        cfg = load_pretrain_config(recipe, overrides)
        if cfg.data.format != "synthetic":
            raise UserError(f"{recipe}: data.format is '{cfg.data.format}'; bench learn runs synthetic recipes only")


def eval_overrides(tiny: bool) -> list[str]:
    """The quickstart's test views and linear-probe settings (tiny: one view, 5 epochs), no plots or bars."""
    return list(EVAL_OVERRIDES) + (TINY_EVAL if tiny else []) + ["linear.tsne=false", "progress=false"]


# ------------------------------------------------------------------------------------------------
# One recipe
# ------------------------------------------------------------------------------------------------


def _checkpoint_step(run_dir: Path) -> int:
    """Optimizer steps done by the run in ``run_dir`` (0 when it has no checkpoint yet)."""
    ckpt = run_dir / "last.ckpt"
    return int(load_checkpoint(ckpt)["step"]) if ckpt.is_file() else 0


def config_differences(saved: Any, current: Any, prefix: str = "") -> list[str]:
    """Dotted keys whose value in ``saved`` (a finished run's config.yaml) differs from ``current``.

    Keys only in ``current`` are settings added to videossl after the run was made; they did not exist for it, so
    they are not differences (otherwise every new config field would invalidate every earlier run)."""
    if isinstance(saved, dict) and isinstance(current, dict):
        out: list[str] = []
        for key, value in saved.items():
            name = f"{prefix}{key}"
            out += config_differences(value, current[key], f"{name}.") if key in current else [name]
        return out
    return [] if saved == current else [prefix.rstrip(".")]


def pretrain_timed(cfg: Any) -> tuple[Path, float, int]:
    """Pretrain (resuming / skipping a finished run) -> (run dir, pretraining minutes, steps done).

    Minutes add up over the invocations that trained (kept in ``<run_dir>/bench_minutes.json``); one that
    only finds a finished run adds nothing, so a rerun reports the time the run really took.
    """
    run_dir = Path(cfg.train.run_dir)
    saved = run_dir / "config.yaml"
    if (run_dir / "last.ckpt").is_file() and saved.is_file():
        changed = config_differences(yaml.safe_load(saved.read_text()), yaml.safe_load(to_yaml(cfg)))
        if changed:
            raise UserError(f"{run_dir} holds a run of a different configuration ({', '.join(changed[:5])} changed); "
                            f"delete that folder to retrain, or use another --out")
    minutes_file = run_dir / "bench_minutes.json"
    before = _checkpoint_step(run_dir)
    minutes = json.loads(minutes_file.read_text())["minutes"] if minutes_file.is_file() and before else 0.0
    started = time.perf_counter()
    run_dir = pretrain(cfg)
    after = _checkpoint_step(run_dir)
    if after != before:
        minutes += (time.perf_counter() - started) / 60
        minutes_file.write_text(json.dumps({"minutes": minutes, "steps": after}))
    return run_dir, minutes, after


def frozen_top1(encoder: str, overrides: list[str], out_dir: Path) -> dict[str, float]:
    """Linear probe and kNN top-1 of ``encoder`` (an ``encoder.pt`` path or ``random:<backbone>``)."""
    ecfg = load_eval_config(encoder, None, overrides + [f"out_dir={out_dir}"])
    results = run_frozen_protocols(ecfg, ("linear", "knn"))
    return {"linear_top1": float(results["linear"]["top1"]), "knn_top1": float(results["knn"]["top1"]),
            "linear_per_class": results["linear"]["splits"][0].get("per_class_top1"),
            "num_test": int(results["linear"]["splits"][0]["num_test"]),
            "num_classes": int(results["linear"]["splits"][0]["num_classes"])}


def final_loss(run_dir: Path) -> float | None:
    """The last logged training loss of a run (``metrics.csv``), or None."""
    path = run_dir / "metrics.csv"
    rows = read_metrics(path) if path.is_file() else []
    losses = [r["loss"] for r in rows if r.get("loss") not in (None, "")]
    return float(losses[-1]) if losses else None


def random_init_tag(cfg) -> str:
    """``<backbone>`` or ``<backbone>-<kwargs hash>`` of the run's video backbone."""
    return backbone_tag(cfg.backbone.name, OmegaConf.to_container(cfg.backbone.kwargs, resolve=True) or {},
                        int(cfg.train.seed))


def bench_recipe(recipe: Path, overrides: list[str], tiny: bool, out: Path, num_test: int | None = None) -> dict:
    """Pretrain one recipe, evaluate it and random init with the same geometry -> one table row.

    ``num_test``: videos in the evaluation's synthetic test split (None: the recipe's own)."""
    name = recipe.stem
    cfg = load_pretrain_config(recipe, [*overrides, f"train.run_dir={out / name / 'pretrain'}", "train.resume=auto"])
    run_dir, minutes, steps = pretrain_timed(cfg)
    evaluation = with_num_test(eval_data_overrides(cfg), num_test) + eval_overrides(tiny)
    ssl = cached_top1(str(run_dir / "encoder.pt"), evaluation, out / name / "eval", out / name / "eval" / "bench_eval.json",
                      frozen_top1)
    backbone = cfg.backbone.name
    rand_dir = out / f"random-{random_init_tag(cfg)}"
    rand_dir.mkdir(parents=True, exist_ok=True)
    rand_encoder = write_random_init(cfg, rand_dir / "encoder.pt")
    rand = cached_top1(str(rand_encoder), evaluation, rand_dir, out / f"random-{random_init_tag(cfg)}.json", frozen_top1)
    beats = ssl["linear_top1"] > rand["linear_top1"] and ssl["knn_top1"] > rand["knn_top1"]
    return {"recipe": name, "method": cfg.method.name, "backbone": cfg.backbone.name,
            "linear_top1": ssl["linear_top1"], "knn_top1": ssl["knn_top1"],
            "random_linear_top1": rand["linear_top1"], "random_knn_top1": rand["knn_top1"],
            "beats_random": beats, "pretrain_minutes": round(minutes, 2), "steps": steps,
            "final_loss": final_loss(run_dir), "epochs": int(cfg.train.epochs), "batch_size": int(cfg.train.batch_size),
            "tiny": tiny, "run_dir": str(run_dir), "num_test": ssl.get("num_test"), "num_classes": ssl.get("num_classes"),
            "linear_per_class": ssl.get("linear_per_class"), "random_linear_per_class": rand.get("linear_per_class"),
            **bench_audio(cfg, run_dir, tiny, out, num_test)}


# ------------------------------------------------------------------------------------------------
# Table
# ------------------------------------------------------------------------------------------------


def format_table(rows: list[dict]) -> str:
    """Markdown table of ``rows`` (a failed recipe shows its error in place of the numbers)."""
    def pct(v: Any) -> str:
        return "-" if v is None else f"{100 * float(v):.1f}"

    lines = ["| recipe | method | backbone | linear top-1 (%) | kNN top-1 (%) | random-init linear (%) "
             "| random-init kNN (%) | beats random | audio linear (%) | random-init audio (%) | steps | pretrain min |",
             "|---|---|---|---:|---:|---:|---:|:---:|---:|---:|---:|---:|"]
    for r in rows:
        if r.get("error"):
            lines.append(f"| {r['recipe']} | {r.get('method', '-')} | {r.get('backbone', '-')} "
                         f"| failed: {r['error']} | | | | | | | | |")
            continue
        # "beats random" is the video verdict; the audio tower's is a separate warning (rows before the audio
        # column have no audio keys: "-")
        lines.append(f"| {r['recipe']} | {r['method']} | {r['backbone']} | {pct(r['linear_top1'])} "
                     f"| {pct(r['knn_top1'])} | {pct(r['random_linear_top1'])} | {pct(r['random_knn_top1'])} "
                     f"| {'yes' if r['beats_random'] else 'no'} | {pct(r.get('audio_linear_top1'))} "
                     f"| {pct(r.get('random_audio_linear_top1'))} | {r.get('steps', '-')} | {r['pretrain_minutes']:.1f} |")
    return "\n".join(lines)


def format_per_class(rows: list[dict]) -> str:
    """Linear-probe top-1 per class (rows), one column per recipe that recorded it, random init first; "" if
    fewer than two recipes did. Each cell rests on a class's few test videos: read it as a trend, not a result."""
    rows = [r for r in rows if not r.get("error") and r.get("linear_per_class")]
    if len(rows) < 2:
        return ""
    classes = list(rows[0]["linear_per_class"])
    random_row = next((r["random_linear_per_class"] for r in rows if r.get("random_linear_per_class")), None)
    # the recipe name without "_synthetic": one method can have several recipes (brave_va / brave_vv, svt on two backbones)
    columns = ([("random init", random_row)] if random_row else []) + [
        (r["recipe"].replace("_synthetic", ""), r["linear_per_class"]) for r in rows]

    def pct(v: Any) -> str:
        return "-" if v is None else f"{100 * float(v):.0f}"

    lines = ["| class | " + " | ".join(name for name, _ in columns) + " |",
             "|---|" + "---:|" * len(columns)]
    lines += [f"| {c} | " + " | ".join(pct(values.get(c)) for _, values in columns) + " |" for c in classes]
    return "\n".join(lines)


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """Rows of earlier invocations then this one's new recipes; a recipe run again replaces its old row in place."""
    fresh = {r["recipe"]: r for r in new}
    merged = [fresh.pop(r["recipe"], r) for r in old]
    return merged + [r for r in new if r["recipe"] in fresh]


def write_outputs(out: Path, rows: list[dict], command: str) -> str:
    """Write ``<out>/learn.json`` and ``<out>/learn.md``; return the table."""
    table = format_table(rows)
    for name, text in (("learn.json", json.dumps({"command": command, "rows": rows}, indent=2)), ("learn.md", table + "\n")):
        tmp = out / f".{name}.{os.getpid()}.tmp"  # write then rename: a concurrent invocation never reads half a file
        tmp.write_text(text)
        tmp.replace(out / name)
    return table


def write_doc(path: Path, table: str, command: str, rows: list[dict]) -> None:
    """The measured table as a markdown page: what was run, on what machine, and the verdict."""
    failing = [r["recipe"] for r in rows if not r.get("error") and not r["beats_random"]]
    failed = [r["recipe"] for r in rows if r.get("error")]
    verdict = ("Every recipe beats random initialisation on both protocols." if not failing and not failed else
               f"Not beating random init on both protocols: {', '.join(failing) or 'none'}; "
               f"failed to run: {', '.join(failed) or 'none'}.")
    audio_failing = [r["recipe"] for r in rows if not r.get("error") and r.get("audio_beats_random") is False]
    if audio_failing:
        verdict += f" Audio towers not beating their random init: {', '.join(audio_failing)}."
    noise = ""
    sized = [r for r in rows if not r.get("error") and r.get("num_test") and r.get("num_classes")]
    if sized:  # binomial standard error of a top-1 at chance: differences within ~2 of them are noise
        n, k = min(r["num_test"] for r in sized), max(r["num_classes"] for r in sized)
        se_chance, se_40 = (100 * math.sqrt(p * (1 - p) / n) for p in (1 / k, 0.4))
        noise = (f" With {n} test videos and {k} classes, chance is {100 / k:.1f}%; one binomial standard error is "
                 f"{se_chance:.1f} points near chance and {se_40:.1f} points at 40% top-1, so at the accuracies of "
                 f"this table a difference under ~{2 * se_40:.0f} points is not evidence.")
    per_class = format_per_class(rows)
    if per_class:
        per_class = ("\n## Linear-probe top-1 per class (%)\n\nFrom the same evaluations (recipes evaluated before "
                     "per-class numbers were recorded have no column).\n\n" + per_class + "\n")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(
        "# Learning benchmark: every method against random initialisation\n\n"
        "`videossl bench learn` pretrains each synthetic recipe on the unlabeled pool of the synthetic dataset "
        "(12 motion classes), then evaluates the frozen encoder with a linear probe and a weighted kNN (k=20, "
        "T=0.07) on the labeled train / test sets with the pretraining clip geometry, against the same "
        "architecture at random initialisation evaluated the same way (the quickstart's test views: 4 clips x 3 "
        "crops; linear probe 100 epochs on 3 clips per training video). \"beats random\" means a higher top-1 "
        "on both protocols. For runs with an audio tower, \"audio linear\" is a linear probe of the frozen audio "
        "tower on the audio tracks of the same labeled sets (the run's audio window, 3 windows per file) against "
        "the same audio backbone at random initialisation; \"-\" means no audio tower. Minutes are pretraining wall time only; `steps` are optimizer steps. Options given "
        "on the command line (shorter schedules, smaller clips) apply to every recipe and to the random-init "
        "baseline alike.\n\n"
        f"Measured with:\n\n```\n{command}\n```\n\n"
        f"Machine: {os.cpu_count()} CPU cores ({platform.machine()}), no GPU, torch {torch.__version__}.\n\n"
        f"{table}\n\n{verdict}{noise}\n" + per_class)


# ------------------------------------------------------------------------------------------------
# Command
# ------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipes", nargs="+", metavar="RECIPE", help="recipe names or paths (e.g. simclr_synthetic_tiny3d)")
    parser.add_argument("--all", action="store_true", help="every recipes/*_synthetic_*.yaml")
    parser.add_argument("--out", default="runs/bench-learn", help="output directory (default: runs/bench-learn)")
    parser.add_argument("--epochs", type=int, help="override train.epochs of every recipe")
    parser.add_argument("--max-steps", type=int, help="override train.max_steps of every recipe")
    parser.add_argument("--tiny", action="store_true", help="CI size: 32 px, 4 frames, a few videos, 2 steps")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="pretraining overrides applied to every recipe")
    parser.add_argument("--num-test", type=int, default=DEFAULT_NUM_TEST,
                        help=f"synthetic test videos the evaluation uses (default {DEFAULT_NUM_TEST}; --tiny: the tiny set's)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--write-doc", metavar="PATH", help="also write the table and command to this markdown file")


def apply_common_args(args: argparse.Namespace) -> None:
    """``--threads`` and the schedule options every learning benchmark shares (``bench learn``, ``bench factors``)."""
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    for key, value in (("--epochs", args.epochs), ("--max-steps", args.max_steps)):
        if value is not None and value < 1:
            raise UserError(f"{key}: must be >= 1, got {value}")


def run(args: argparse.Namespace) -> int:
    apply_common_args(args)
    recipes = find_recipes(args.recipes, args.all)
    out = Path(args.out)
    overrides = recipe_overrides(args.tiny, out, args.epochs, args.max_steps, args.overrides)
    check_recipes(recipes, overrides)  # every recipe loads and is synthetic before hours of training start
    out.mkdir(parents=True, exist_ok=True)
    command = "videossl bench learn " + " ".join(shlex.quote(a) for a in sys.argv[3:]) \
        if sys.argv[1:3] == ["bench", "learn"] else "videossl bench learn (called from Python)"

    def earlier_rows() -> list[dict]:  # read again before each write: another invocation may share --out
        return json.loads((out / "learn.json").read_text())["rows"] if (out / "learn.json").is_file() else []

    rows: list[dict] = []
    for i, recipe in enumerate(recipes, 1):
        print(f"\n=== [{i}/{len(recipes)}] {recipe.stem}", flush=True)
        try:
            rows.append(bench_recipe(recipe, overrides, args.tiny, out, None if args.tiny else args.num_test))
        except UserError as err:  # a recipe's own mistake: report it in the table and go on with the others
            log.error("%s: %s", recipe.stem, err)
            rows.append({"recipe": recipe.stem, "error": str(err)})
        merged = merge_rows(earlier_rows(), rows)
        table = write_outputs(out, merged, command)
    print("\n" + table)
    print(f"\nwrote {out / 'learn.json'} and {out / 'learn.md'}")
    if args.write_doc:
        write_doc(Path(args.write_doc), table, command, merged)
        print(f"wrote {args.write_doc}")
    failed = [r for r in rows if r.get("error")]
    for r in rows:
        if not r.get("error") and not r["beats_random"]:
            print(f"WARNING: {r['recipe']} does not beat random initialisation on both protocols")
    for r in rows:
        if not r.get("error") and r.get("audio_beats_random") is False:
            print(f"WARNING: {r['recipe']}: the audio tower does not beat its random initialisation on the audio "
                  f"linear probe ({100 * r['audio_linear_top1']:.1f}% vs {100 * r['random_audio_linear_top1']:.1f}%)")
    return 1 if failed else 0
