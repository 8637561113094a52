"""``videossl bench factors``: which factor of a video each method's features carry: appearance, motion, arrow of time.

    videossl bench factors --recipes simclr_synthetic_tiny3d vcop_synthetic_tiny3d ... [--out runs/bench-factors]
                           [--epochs N] [--max-steps N] [--residual] [--ceilings] [--data KEY=VALUE ...]
                           [--set KEY=VALUE ...] [--tiny] [--threads N] [--write-doc docs/benchmarks-factors.md]

The factor dataset (``videossl.data.synthetic_factors``, issue 23) gives every video three independent labels:
``appearance`` (what the object is), ``motion`` (what it does), ``arrow`` (played forward or reversed). Per recipe:

1. The recipe's data section is swapped to the factor dataset's unlabeled pool (``data.format=folder``,
   ``data.root=<factor dataset>``, ``data.split=pool``; ``--data`` sets the dataset's sizes). Every other setting,
   the clip geometry included, stays the recipe's, so each method's hyperparameters live in its one recipe. The
   main rows see raw RGB (``backbone.kwargs.input_transform=rgb``); ``--residual`` adds one row per recipe on
   residual frames (x[t+1] - x[t], Tao et al. 2020), labelled ``residual`` and pretrained separately.
2. Pretrain as ``bench learn`` does (``learn.pretrain_timed``: resume an interrupted run, skip a finished one).
3. Evaluate the frozen encoder per factor (``eval.factors.evaluate_factors``): ONE feature extraction (training
   views: ``linear.train_clips`` centre clips; test: the quickstart's 4 clips x 3 crops, ``bench learn``'s views),
   then a linear probe and a weighted kNN per factor on the same features.
4. The same for the same architecture at random initialisation seeded like the run (the residual wrapper only on
   residual rows), cached per architecture and evaluation setting in ``<out>/random-<tag>.json``.
5. The supervised ceiling (from scratch, per factor): ``--ceilings`` fine-tunes that random-init network end to end
   per factor (``CEILING_OVERRIDES``), cached in ``<out>/supervised-<tag>.json``; without it, a cached result is
   used when there is one, else the row is left empty (the ceilings section of docs/benchmarks-factors.md has the
   numbers measured with ``videossl eval finetune``).

Every top-1 carries one binomial standard error sqrt(p (1 - p) / n). A method "beats random" on a factor and
protocol when SSL minus random init exceeds two standard errors of the difference, 2 sqrt(SE_ssl^2 + SE_rand^2).
Writes ``<out>/factors.json`` and ``<out>/factors.md`` after every recipe (earlier rows kept, a row run again
replaced); ``--write-doc`` replaces the section between ``DOC_BEGIN`` and ``DOC_END`` of a markdown file.
"""
from __future__ import annotations

import argparse
import json
import logging
import math
import os
import platform
import shlex
import sys
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf

from videossl.config import load_pretrain_config
from videossl.data.synthetic_factors import FACTORS, ensure_synthetic_factors
from videossl.errors import UserError
from videossl.eval.config import load_eval_config
from videossl.eval.factors import evaluate_factors, factor_dir
from videossl.eval.finetune import run_finetune
from videossl.eval.synthetic_protocol import SUPERVISED_OVERRIDES, write_random_init
from videossl.files import write_text

from .learn import TINY_TRAIN, apply_common_args, eval_overrides, final_loss, find_recipes, pretrain_timed
from .learn_cache import backbone_tag, cached_top1

log = logging.getLogger("videossl.bench.factors")

DEFAULT_OUT = "runs/bench-factors"
# CI size: a few videos of the factor dataset, 32 px crops of 4 consecutive frames, 2 optimizer steps.
TINY_SIZES = {"num_pool": 8, "num_train": 16, "num_test": 16, "size": 32, "min_seconds": 1.0, "max_seconds": 1.0}
TINY_GEOMETRY = ["data.crop_size=32", "data.num_frames=4", "data.frame_stride=1", "data.num_workers=0"]
TINY_CEILING = ["finetune.epochs=1", "finetune.warmup_epochs=0", "finetune.batch_size=4"]
# The supervised ceiling: the random-init network fine-tuned end to end per factor with the quickstart's
# supervised-bound settings (eval.synthetic_protocol.SUPERVISED_OVERRIDES: AdamW, 30 epochs).
CEILING_OVERRIDES = list(SUPERVISED_OVERRIDES)
VARIANTS = ("rgb", "residual")
PROTOCOLS = ("linear", "knn")
DOC_BEGIN = "<!-- bench-factors:begin (videossl bench factors --write-doc replaces this section) -->"
DOC_END = "<!-- bench-factors:end -->"


# ------------------------------------------------------------------------------------------------
# Data and recipes
# ------------------------------------------------------------------------------------------------


def parse_sizes(items: list[str]) -> dict[str, int | float]:
    """``["num_pool=600", "min_seconds=2.5"]`` -> ``{"num_pool": 600, "min_seconds": 2.5}``: keyword arguments of
    ``ensure_synthetic_factors``."""
    sizes: dict[str, int | float] = {}
    for item in items:
        key, sep, value = item.partition("=")
        try:
            sizes[key] = int(value) if value.lstrip("-").isdigit() else float(value)
        except ValueError:
            sizes[key] = None
        if not sep or not key or sizes[key] is None:
            raise UserError(f"--data: expected KEY=NUMBER (a size of the factor dataset), got '{item}'")
    return sizes


def factor_dataset(sizes: dict[str, int | float]) -> Path:
    """The factor dataset at ``sizes`` (generated once, cached); ``ensure_synthetic_factors`` refuses an unknown size
    with one ``UserError`` line naming the known ones."""
    return Path(ensure_synthetic_factors(None, **sizes))


def pretrain_overrides(root: Path, variant: str, tiny: bool, epochs: int | None, max_steps: int | None,
                       extra: list[str]) -> list[str]:
    """Overrides of one recipe's pretraining: the factor pool as its data, the input of ``variant``
    (``rgb`` | ``residual``), CI sizes, the shortened schedule, then the user's ``--set`` (last, so they win)."""
    out = ["train.progress=false", "data.format=folder", f"data.root={root}", "data.split=pool",
           f"backbone.kwargs.input_transform={variant}"]
    if tiny:
        out += TINY_GEOMETRY + TINY_TRAIN
    if epochs is not None:
        out.append(f"train.epochs={epochs}")
    if max_steps is not None:
        out.append(f"train.max_steps={max_steps}")
    return out + list(extra)


def check_synthetic(recipes: list[Path]) -> None:
    """Every recipe is a synthetic one (its data section is what the benchmark swaps)."""
    for recipe in recipes:
        fmt = OmegaConf.select(OmegaConf.load(recipe), "data.format", default="synthetic")
        if fmt != "synthetic":
            raise UserError(f"{recipe}: data.format is '{fmt}'; bench factors runs synthetic recipes only")


def eval_overrides_for(cfg: Any, root: Path, tiny: bool) -> list[str]:
    """The evaluation of a run of ``cfg``: the first factor's manifests, the run's clip geometry, bench learn's
    test views and probe settings (``eval.factors.evaluate_factors`` finds the other factors beside it)."""
    d = cfg.data
    return ["data.format=csv", f"data.root={factor_dir(root, FACTORS[0])}", f"data.num_frames={d.num_frames}",
            f"data.frame_stride={d.frame_stride}", f"data.crop_size={d.crop_size}", f"data.decoder={d.decoder}",
            f"data.num_workers={d.num_workers}", *eval_overrides(tiny)]


def architecture_tag(cfg: Any) -> str:
    """``<backbone>[-<hash of kwargs and seed>]`` of the run's network; ``input_transform=rgb`` (the default)
    is left out, so an RGB row and a recipe without the key share one baseline."""
    kwargs = OmegaConf.to_container(cfg.backbone.kwargs, resolve=True) or {}
    if kwargs.get("input_transform") == "rgb":
        kwargs.pop("input_transform")
    return backbone_tag(cfg.backbone.name, kwargs, int(cfg.train.seed))


def baseline_key(cfg: Any) -> str:
    """One random-init / supervised baseline per architecture and clip geometry: ``<tag> <T>x<stride>@<crop>``."""
    d = cfg.data
    return f"{architecture_tag(cfg)} {d.num_frames}x{d.frame_stride}@{d.crop_size}"


# ------------------------------------------------------------------------------------------------
# Evaluations (each cached as JSON by learn_cache.cached_top1)
# ------------------------------------------------------------------------------------------------


def factor_top1(encoder: str, overrides: list[str], out_dir: Path) -> dict[str, dict]:
    """Linear / kNN top-1 with SEs per factor of ``encoder`` (``overrides``: ``eval_overrides_for``)."""
    cfg = load_eval_config(encoder, None, [*overrides, f"out_dir={out_dir}"])
    root = Path(cfg.data.root).parent.parent  # data.root is <root>/factors/<first factor>
    return evaluate_factors(cfg, root, FACTORS)


def supervised_top1(encoder: str, overrides: list[str], out_dir: Path) -> dict[str, dict]:
    """The supervised ceiling: ``encoder`` (random init) fine-tuned end to end on each factor's labels.

    ``overrides``: ``eval_overrides_for`` plus the fine-tuning settings; the data root is swapped per factor."""
    first = next(o for o in overrides if o.startswith("data.root="))
    root = Path(first.partition("=")[2]).parent.parent
    out = {}
    for factor in FACTORS:
        factor_overrides = [f"data.root={factor_dir(root, factor)}" if o == first else o for o in overrides]
        cfg = load_eval_config(encoder, None, [*factor_overrides, f"out_dir={out_dir / factor}"])
        split = run_finetune(cfg)["splits"][0]
        p, n = float(split["top1"]), int(split["num_test"])
        out[factor] = {"linear_top1": p, "linear_se": math.sqrt(p * (1 - p) / n) if n else 0.0,
                       "num_test": n, "num_classes": int(split["num_classes"])}
    return out


def baselines(cfg: Any, evaluation: list[str], out: Path, tiny: bool, ceilings: bool) -> dict:
    """Random init (always) and the supervised ceiling (``ceilings``, or a cached one) of ``cfg``'s network."""
    tag = architecture_tag(cfg)
    rand_dir = out / f"random-{tag}"
    rand_dir.mkdir(parents=True, exist_ok=True)
    encoder = write_random_init(cfg, rand_dir / "encoder.pt")
    random_init = cached_top1(str(encoder), evaluation, rand_dir, out / f"random-{tag}.json", factor_top1)
    supervised_overrides = evaluation + CEILING_OVERRIDES + (TINY_CEILING if tiny else [])
    cache = out / f"supervised-{tag}.json"
    supervised = None
    if ceilings:
        supervised = cached_top1(str(encoder), supervised_overrides, out / f"supervised-{tag}", cache, supervised_top1)
    elif cache.is_file():  # an earlier --ceilings run of this architecture and setting
        stamp_free = [e for e in json.loads(cache.read_text()) if e["overrides"] == supervised_overrides]
        supervised = stamp_free[-1]["result"] if stamp_free else None
    return {"backbone": cfg.backbone.name, "tag": tag, "random": random_init, "supervised": supervised}


def beats_random(ssl: dict, random_init: dict) -> dict[str, list[str]]:
    """``{factor: [protocols]}`` where SSL - random > 2 sqrt(SE_ssl^2 + SE_random^2) (two SEs of the difference)."""
    out = {}
    for factor, numbers in ssl.items():
        base = random_init.get(factor)
        if base is None:
            continue
        out[factor] = [p for p in PROTOCOLS if numbers[f"{p}_top1"] - base[f"{p}_top1"]
                       > 2 * math.hypot(numbers[f"{p}_se"], base[f"{p}_se"])]
    return out


# ------------------------------------------------------------------------------------------------
# One recipe
# ------------------------------------------------------------------------------------------------


def bench_factor_recipe(recipe: Path, variant: str, overrides: list[str], root: Path, out: Path, tiny: bool,
                        ceilings: bool) -> tuple[dict, dict]:
    """Pretrain ``recipe`` on the factor pool (``variant`` input), evaluate it and its baselines per factor
    -> (table row, ``{baseline key: baselines}``)."""
    name = recipe.stem if variant == "rgb" else f"{recipe.stem}+{variant}"
    cfg = load_pretrain_config(recipe, [*overrides, f"train.run_dir={out / name / 'pretrain'}", "train.resume=auto"])
    run_dir, minutes, steps = pretrain_timed(cfg)
    evaluation = eval_overrides_for(cfg, root, tiny)
    ssl = cached_top1(str(run_dir / "encoder.pt"), evaluation, out / name / "eval",
                      out / name / "eval" / "bench_factors.json", factor_top1)
    key = baseline_key(cfg)
    base = baselines(cfg, evaluation, out, tiny, ceilings)
    row = {"row": name, "recipe": recipe.stem, "variant": variant, "method": cfg.method.name,
           "backbone": cfg.backbone.name, "baseline": key, "factors": ssl,
           "beats_random": beats_random(ssl, base["random"]), "steps": steps, "epochs": int(cfg.train.epochs),
           "batch_size": int(cfg.train.batch_size), "pretrain_minutes": round(minutes, 2),
           "final_loss": final_loss(run_dir), "run_dir": str(run_dir), "tiny": tiny}
    return row, {key: base}


# ------------------------------------------------------------------------------------------------
# Table and doc
# ------------------------------------------------------------------------------------------------


def cell(numbers: dict | None, protocol: str) -> str:
    """``"45.2 ± 2.0"`` (percent, one binomial SE) or ``"-"``."""
    if not numbers or numbers.get(f"{protocol}_top1") is None:
        return "-"
    return f"{100 * numbers[f'{protocol}_top1']:.1f} ± {100 * numbers[f'{protocol}_se']:.1f}"


def factor_cells(factors: dict | None) -> list[str]:
    """One ``lin / kNN`` cell per factor."""
    return [f"{cell((factors or {}).get(f), 'linear')} / {cell((factors or {}).get(f), 'knn')}" for f in FACTORS]


def beats_text(beats: dict[str, list[str]]) -> str:
    """``"appearance (lin, kNN); arrow (kNN)"`` or ``"none"``."""
    names = {"linear": "lin", "knn": "kNN"}
    parts = [f"{f} ({', '.join(names[p] for p in ps)})" for f, ps in beats.items() if ps]
    return "; ".join(parts) or "none"


def format_table(rows: list[dict], bases: dict[str, dict]) -> str:
    """Markdown: per baseline (architecture and clip geometry) its random-init and supervised rows, then its
    SSL rows; a failed recipe shows its error."""
    header = ["| method | backbone | " + " | ".join(f"{f} lin / kNN (%)" for f in FACTORS)
              + " | beats random (> 2 SE) | steps | pretrain min |",
              "|---|---|" + "---:|" * len(FACTORS) + "---|---:|---:|"]
    lines, order = list(header), []
    for r in rows:
        key = r.get("baseline")
        if key not in order:
            order.append(key)
    for key in order:
        base = bases.get(key or "", {})
        label = f"{base.get('backbone', '-')} ({key.split(' ', 1)[1]})" if key else "-"
        variants = {r.get("variant", "rgb") for r in rows if r.get("baseline") == key}
        if key and variants != {"rgb"}:  # a residual-input network: its own random init and ceiling
            label += ", " + "/".join(sorted(variants - {"rgb"})) + " frames"
        if base:
            lines.append(f"| random init | {label} | " + " | ".join(factor_cells(base.get("random"))) + " | | | |")
            if base.get("supervised"):
                supervised = " | ".join(cell(base["supervised"].get(f), "linear") for f in FACTORS)
            else:  # measured by `videossl eval finetune` in the doc's ceilings section, or here with --ceilings
                supervised = "not run here (--ceilings)" + " |" * (len(FACTORS) - 1)
            lines.append(f"| supervised (ceiling, fine-tuned) | {label} | {supervised} | | | |")
        for r in rows:
            if r.get("baseline") != key:
                continue
            if r.get("error"):
                lines.append(f"| {r['row']} | failed: {r['error']} |" + " |" * (len(FACTORS) + 3))
                continue
            lines.append(f"| {r['method']} | {label} | " + " | ".join(factor_cells(r["factors"]))
                         + f" | {beats_text(r['beats_random'])} | {r['steps']} | {r['pretrain_minutes']:.1f} |")
    return "\n".join(lines)


def merge_rows(old: list[dict], new: list[dict]) -> list[dict]:
    """Earlier rows, then this invocation's new ones; a row run again replaces its old one in place."""
    fresh = {r["row"]: r for r in new}
    merged = [fresh.pop(r["row"], r) for r in old]
    return merged + [r for r in new if r["row"] in fresh]


def write_outputs(out: Path, rows: list[dict], bases: dict[str, dict], command: str) -> str:
    """``<out>/factors.json`` and ``<out>/factors.md``; returns the table."""
    table = format_table(rows, bases)
    write_text(out / "factors.json", json.dumps({"command": command, "rows": rows, "baselines": bases}, indent=2))
    write_text(out / "factors.md", table + "\n")
    return table


def doc_section(table: str, command: str, rows: list[dict]) -> str:
    """The generated part of docs/benchmarks-factors.md: protocol, command, machine, table, what is noise."""
    done = [r for r in rows if not r.get("error")]
    nothing = [r["row"] for r in done if not any(r["beats_random"].values())]
    sizes = [(r["factors"][f]["num_test"], r["factors"][f]["num_classes"]) for r in done for f in FACTORS
             if f in r["factors"]]
    noise = ""
    if sizes:
        n = min(s[0] for s in sizes)
        noise = (f" With {n} test videos one binomial standard error is {100 * math.sqrt(0.25 / n):.1f} points at 50% "
                 f"top-1 (the largest it gets); a difference of two SEs of the difference is about "
                 f"{200 * math.sqrt(0.5 / n):.1f} points there.")
    device = "GPU" if torch.cuda.is_available() else "no GPU"
    commands = list(dict.fromkeys([r["command"] for r in done if r.get("command")] + [command]))
    return (
        "## What each SSL method learns: per-factor probes (`videossl bench factors`)\n\n"
        "Each recipe pretrains on the factor dataset's unlabeled pool with its own hyperparameters (the benchmark "
        "swaps the recipe's data section only) on raw RGB; a `residual frames` backbone is the same recipe on "
        "x[t+1] - x[t]. The frozen encoder's features are extracted once (3 centre clips per training video; "
        "4 clips x 3 crops per test video) and one linear probe (100 epochs) and one weighted kNN (k=20, T=0.07) "
        "per factor are fitted on them. Random init is the same network seeded like the run, evaluated the same "
        "way; the supervised ceiling is that network fine-tuned end to end per factor. Cells: top-1 % +- one "
        "binomial SE, sqrt(p(1-p)/n). \"beats random\": SSL - random init > 2 sqrt(SE_ssl^2 + SE_random^2). "
        "Chance: 1 / classes per factor.\n\n"
        "Measured with (one invocation per group of rows; finished runs and evaluations are cached, so a later "
        "invocation only adds its rows):\n\n```\n" + "\n".join(commands) + "\n```\n\n"
        f"Machine: {os.cpu_count()} CPU cores ({platform.machine()}), {device}, torch {torch.__version__}.\n\n"
        f"{table}\n\nBeating random init on no factor: {', '.join(nothing) or 'none'}.{noise}\n")


def update_doc(path: Path, section: str) -> None:
    """Replace the text between ``DOC_BEGIN`` and ``DOC_END`` of ``path`` with ``section`` (the rest of the page,
    e.g. the ceilings section, is kept); a page without the markers gets the section appended."""
    block = f"{DOC_BEGIN}\n{section.rstrip()}\n{DOC_END}\n"
    text = path.read_text() if path.is_file() else "# Factor benchmark: appearance, motion and the arrow of time\n"
    if DOC_BEGIN in text and DOC_END in text:
        head, rest = text.split(DOC_BEGIN, 1)
        tail = rest.split(DOC_END, 1)[1].lstrip("\n")
        text = head + block + ("\n" + tail if tail else "")
    else:
        text = text.rstrip("\n") + "\n\n" + block
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, text)


# ------------------------------------------------------------------------------------------------
# Command
# ------------------------------------------------------------------------------------------------


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--recipes", nargs="+", metavar="RECIPE",
                        help="recipe names or paths (e.g. simclr_synthetic_tiny3d)")
    parser.add_argument("--all", action="store_true", help="every recipes/*_synthetic_*.yaml")
    parser.add_argument("--out", default=DEFAULT_OUT, help=f"output directory (default: {DEFAULT_OUT})")
    parser.add_argument("--epochs", type=int, help="override train.epochs of every recipe (the shortened schedule)")
    parser.add_argument("--max-steps", type=int, help="override train.max_steps of every recipe")
    parser.add_argument("--residual", action="store_true", help="also a row per recipe on residual frames")
    parser.add_argument("--ceilings", action="store_true",
                        help="also fine-tune each architecture from scratch per factor (cached per architecture)")
    parser.add_argument("--data", nargs="+", default=[], metavar="KEY=VALUE",
                        help="sizes of the factor dataset (ensure_synthetic_factors keywords, e.g. num_pool=600)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="pretraining overrides applied to every recipe")
    parser.add_argument("--tiny", action="store_true", help="CI size: a few 32 px videos, 4 frames, 2 steps")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")
    parser.add_argument("--write-doc", metavar="PATH", help="also write the table into this markdown file's section")


def run(args: argparse.Namespace) -> int:
    apply_common_args(args)
    recipes = find_recipes(args.recipes, args.all)
    check_synthetic(recipes)
    root = factor_dataset({**(TINY_SIZES if args.tiny else {}), **parse_sizes(args.data)})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    variants = VARIANTS if args.residual else VARIANTS[:1]
    plan = [(recipe, variant, pretrain_overrides(root, variant, args.tiny, args.epochs, args.max_steps, args.overrides))
            for recipe in recipes for variant in variants]
    for recipe, _, overrides in plan:  # every recipe loads before hours of training start
        load_pretrain_config(recipe, overrides)
    command = ("videossl bench factors " + " ".join(shlex.quote(a) for a in sys.argv[3:])
               if sys.argv[1:3] == ["bench", "factors"] else "videossl bench factors (called from Python)")
    rows, bases = [], {}
    for i, (recipe, variant, overrides) in enumerate(plan, 1):
        print(f"\n=== [{i}/{len(plan)}] {recipe.stem} ({variant})", flush=True)
        try:
            row, base = bench_factor_recipe(recipe, variant, overrides, root, out, args.tiny, args.ceilings)
            rows.append({**row, "command": command})
            bases.update(base)
        except UserError as err:  # a recipe's own mistake: in the table, and on with the others
            log.error("%s: %s", recipe.stem, err)
            rows.append({"row": recipe.stem if variant == "rgb" else f"{recipe.stem}+{variant}", "error": str(err)})
        earlier = json.loads((out / "factors.json").read_text()) if (out / "factors.json").is_file() else {}
        merged = merge_rows(earlier.get("rows", []), rows)
        all_bases = {**earlier.get("baselines", {}), **bases}
        table = write_outputs(out, merged, all_bases, command)
    print("\n" + table + f"\n\nwrote {out / 'factors.json'} and {out / 'factors.md'}")
    if args.write_doc:
        update_doc(Path(args.write_doc), doc_section(table, command, merged))
        print(f"wrote {args.write_doc}")
    return 1 if any(r.get("error") for r in rows) else 0
