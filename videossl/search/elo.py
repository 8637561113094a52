"""``videossl search elo RECIPE``: evolve the loss weights of an ELo recipe (Piergiovanni et al., CVPR 2020).

    videossl search elo elo_synthetic_tiny3d [--out runs/search-elo] [--generations 3] [--population 4]
        [--steps 40] [--mu 2] [--sigma 0.5] [--seed 0] [--select zipf|knn] [--clusters 0] [--zipf-s 1.0]
        [--fitness-videos 0] [--knn-queries test|heldout] [--validation-seed -1] [--set key=value ...] [--eval-set key=value ...]
        [--threads N]

Each candidate (a set of ``method.weights``) pretrains the recipe for ``--steps`` optimizer steps from the same
seed (``<out>/candidates/g<gen>-c<id>``), then its RGB encoder is scored (``videossl/search/fitness.py``): the
unlabeled Zipf-prior KL (the selection fitness, ELo's), the uniform-prior KL and the labeled kNN top-1 (for
comparison only, unless ``--select knn``; ``--knn-queries heldout`` scores it two-fold within the train split, each
half against the other, so that a kNN-selected search never sees the test split; ``--validation-seed S`` scores every
fitness on the synthetic dataset of generator seed S instead, a validation set of other videos whose test split
(``--eval-set data.synthetic.num_test=600`` for more queries) is the kNN's queries). The evolution is
``search/evolution.py``'s (mu + lambda) ES; generation 0 starts from the recipe's weights (equal weights in
``elo_synthetic_tiny3d``; pass an earlier search's ``best_recipe.yaml`` to continue from its winner).

Outputs under ``--out``: ``candidates.csv`` (one row per candidate: generation, id, weights, fitness values,
minutes), ``fitness.png`` (fitness over generations), ``summary.json`` (best candidate, Spearman rank correlation
of the Zipf fitness with the kNN fitness over all candidates) and ``best_recipe.yaml`` (the recipe with the best
weights, full training schedule). Re-running the same command resumes: candidates already in the CSV are skipped
and each generation is rebuilt from the CSV; ``--generations`` may grow between runs, the other settings may not.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path
from typing import Any

import torch
from omegaconf import OmegaConf
from scipy.stats import spearmanr

from videossl.bench.learn import find_recipes
from videossl.config import load_pretrain_config, parse_overrides, read_yaml
from videossl.engine.trainer import pretrain
from videossl.errors import UserError
from videossl.eval.synthetic_protocol import eval_data_overrides
from videossl.files import save_figure, write_text
from videossl.methods.elo import TASKS

from .evolution import Evaluated, initial_population, next_population
from .fitness import encoder_fitness

FITNESS_COLUMNS = ("zipf_kl", "uniform_kl", "knn_top1", "fitness", "cluster_sizes", "minutes", "run_dir")
SELECT = ("zipf", "knn")
# Settings that define a search: resuming with any of them changed would mix two searches in one log.
FIXED_SETTINGS = ("recipe", "population", "steps", "mu", "sigma", "seed", "select", "clusters", "zipf_s",
                  "fitness_videos", "knn_queries", "validation_seed", "overrides", "eval_overrides")
# Settings added after the first searches were logged: an older search.json without them used these values.
SETTING_DEFAULTS = {"knn_queries": "test", "validation_seed": -1}


def tasks() -> tuple[str, ...]:
    return TASKS


def log_columns() -> list[str]:
    return ["generation", "id", *tasks(), *FITNESS_COLUMNS]


def read_log(path: Path) -> list[dict[str, Any]]:
    """Rows of ``candidates.csv`` with numbers parsed (an absent file: no rows)."""
    if not path.is_file():
        return []
    with path.open(newline="") as f:
        reader = csv.DictReader(f)
        if reader.fieldnames != log_columns():
            raise UserError(f"{path}: columns {reader.fieldnames} are not those of this version of the search "
                            f"({log_columns()}); use another --out")
        rows = list(reader)
    for row in rows:
        for key in row:
            if key in ("generation", "id", "clusters"):
                row[key] = int(row[key])
            elif key not in ("cluster_sizes", "run_dir"):
                row[key] = float(row[key])
    return rows


def append_log(path: Path, row: dict[str, Any]) -> None:
    new = not path.is_file()
    with path.open("a", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=log_columns())
        if new:
            writer.writeheader()
        writer.writerow({k: (repr(v) if isinstance(v, float) else v) for k, v in row.items()})


def population(generation: int, rows: list[dict[str, Any]], args: argparse.Namespace) -> list[dict[str, float]]:
    """The candidates of ``generation``, rebuilt from the seed and the logged earlier generations."""
    if generation == 0:
        return initial_population(tasks(), args.population, args.sigma, args.seed, getattr(args, "start", None))
    archive = [Evaluated({t: r[t] for t in tasks()}, r["fitness"]) for r in rows if r["generation"] < generation]
    return next_population(archive, generation, args.population, args.mu, args.sigma, args.seed)


def candidate_overrides(weights: dict[str, float], run_dir: Path, args: argparse.Namespace) -> list[str]:
    return [*args.overrides, *(f"method.weights.{t}={v}" for t, v in weights.items()),
            f"train.max_steps={args.steps}", f"train.seed={args.seed}", f"train.run_dir={run_dir}",
            "train.resume=auto", "train.progress=false", "train.plots=false"]


def fitness_data_overrides(cfg: Any, args: argparse.Namespace) -> list[str]:
    """Evaluation data of the fitness: the recipe's synthetic dataset and clip geometry, plus ``--eval-set``."""
    validation_seed = getattr(args, "validation_seed", -1)
    if cfg.data.format == "synthetic":
        base = eval_data_overrides(cfg)
        if validation_seed >= 0:
            if validation_seed == int(cfg.data.synthetic.seed):
                raise UserError(f"--validation-seed {validation_seed}: that is the recipe's data.synthetic.seed; a "
                                f"validation set needs another generator seed (disjoint videos)")
            # An explicit data.root holds the recipe's dataset: the validation set gets a folder of its own
            # (ensure_synthetic would otherwise regenerate the pretraining data in place with the other seed).
            base = [o for o in base if not o.startswith(("data.synthetic.seed=", "data.root="))]
            base.append(f"data.synthetic.seed={validation_seed}")
            if cfg.data.root:
                base.append(f"data.root={cfg.data.root}-validation-seed{validation_seed}")
    elif validation_seed >= 0:
        raise UserError(f"--validation-seed: only for synthetic recipes ({args.recipe} has data.format={cfg.data.format})")
    elif not any(o.startswith("data.format=") for o in args.eval_overrides):
        raise UserError(f"{args.recipe}: data.format is {cfg.data.format}; name the labeled fitness sets with "
                        f"--eval-set data.format=... data.root=... (e.g. ucf101)")
    else:
        d = cfg.data
        base = [f"data.num_frames={d.num_frames}", f"data.frame_stride={d.frame_stride}", f"data.crop_size={d.crop_size}"]
    return base + ["progress=false", *args.eval_overrides]


def run_candidate(recipe: Path, generation: int, cid: int, weights: dict[str, float], out: Path,
                  args: argparse.Namespace) -> dict[str, Any]:
    """Pretrain one candidate briefly and score it -> its CSV row."""
    started = time.perf_counter()
    run_dir = out / "candidates" / f"g{generation}-c{cid}"
    cfg = load_pretrain_config(recipe, candidate_overrides(weights, run_dir, args))
    run_dir = pretrain(cfg)
    scores = encoder_fitness(run_dir / "encoder.pt", fitness_data_overrides(cfg, args), args.clusters, args.zipf_s,
                             args.fitness_videos, args.seed, args.knn_queries)
    fitness = -scores["zipf_kl"] if args.select == "zipf" else scores["knn_top1"]
    return {"generation": generation, "id": cid, **weights, "zipf_kl": scores["zipf_kl"],
            "uniform_kl": scores["uniform_kl"], "knn_top1": scores["knn_top1"], "fitness": fitness,
            "cluster_sizes": scores["cluster_sizes"], "minutes": round((time.perf_counter() - started) / 60, 3),
            "run_dir": str(run_dir)}


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman rank correlation (ties averaged); None with fewer than 3 pairs or a constant column."""
    if len(a) < 3 or len(set(a)) < 2 or len(set(b)) < 2:
        return None
    return float(spearmanr(a, b).statistic)


def plot_fitness(rows: list[dict[str, Any]], path: Path) -> None:
    """Zipf fitness (-KL) and kNN top-1 of every candidate against its generation, best so far as a line."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 2, figsize=(9, 3.5))
    for ax, key, sign, title in ((axes[0], "zipf_kl", -1, "Zipf fitness (-KL, unlabeled)"),
                                 (axes[1], "knn_top1", 1, "kNN top-1 (labeled)")):
        gens = sorted({r["generation"] for r in rows})
        ax.scatter([r["generation"] for r in rows], [sign * r[key] for r in rows], s=18, alpha=0.7, label="candidate")
        best = [max(sign * r[key] for r in rows if r["generation"] <= g) for g in gens]
        ax.plot(gens, best, "-o", color="C3", label="best so far")
        ax.set_xlabel("generation")
        ax.set_title(title)
        ax.set_xticks(gens)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, dpi=110)
    plt.close(fig)


def write_best_recipe(recipe: Path, overrides: list[str], weights: dict[str, float], path: Path, note: str) -> None:
    """The recipe (with the search's ``--set`` overrides) pretraining with ``weights``, its full schedule."""
    merged = OmegaConf.merge(read_yaml(recipe), parse_overrides(overrides))
    merged.method.weights = dict(weights)
    text = OmegaConf.to_yaml(merged)
    write_text(path, f"# Written by `videossl search elo` from {recipe}: {note}\n{text}")
    load_pretrain_config(path)  # the written recipe loads (typed keys, known method)


def summarize(rows: list[dict[str, Any]], out: Path, args: argparse.Namespace) -> dict[str, Any]:
    best = max(rows, key=lambda r: (r["fitness"], -r["generation"], -r["id"]))
    zipf, uniform, knn = ([(-r[k] if k.endswith("_kl") else r[k]) for r in rows] for k in ("zipf_kl", "uniform_kl", "knn_top1"))
    summary = {"candidates": len(rows), "generations": 1 + max(r["generation"] for r in rows), "select": args.select,
               "best": {k: best[k] for k in ("generation", "id", *tasks(), "zipf_kl", "uniform_kl", "knn_top1")},
               "spearman_zipf_vs_knn": spearman(zipf, knn), "spearman_uniform_vs_knn": spearman(uniform, knn),
               "minutes": round(sum(r["minutes"] for r in rows), 2)}
    write_text(out / "summary.json", json.dumps(summary, indent=2))
    plot_fitness(rows, out / "fitness.png")
    note = (f"best of {len(rows)} candidates by {args.select} fitness (generation {best['generation']}, id {best['id']}, "
            f"zipf_kl {best['zipf_kl']:.4f}, knn_top1 {best['knn_top1']:.3f} after {args.steps} steps)")
    write_best_recipe(Path(args.recipe_path), args.overrides, {t: best[t] for t in tasks()}, out / "best_recipe.yaml", note)
    return summary


def check_settings(out: Path, args: argparse.Namespace) -> None:
    """A resumed search must have the settings it started with (``--generations`` may grow)."""
    path = out / "search.json"
    settings = {k: getattr(args, k) for k in FIXED_SETTINGS}
    if path.is_file():
        old = json.loads(path.read_text())
        changed = [k for k in FIXED_SETTINGS if old.get(k, SETTING_DEFAULTS.get(k)) != settings[k]]
        if changed:
            raise UserError(f"{out} holds a search with other settings ({', '.join(changed)} differ); "
                            f"rerun with the same options to resume, or use another --out")
    write_text(path, json.dumps(settings, indent=2))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="an ELo recipe name or path (e.g. elo_synthetic_tiny3d)")
    parser.add_argument("--out", default="runs/search-elo", help="output directory (default: runs/search-elo)")
    parser.add_argument("--generations", type=int, default=3)
    parser.add_argument("--population", type=int, default=4, help="candidates per generation (lambda)")
    parser.add_argument("--steps", type=int, default=40, help="optimizer steps each candidate pretrains")
    parser.add_argument("--mu", type=int, default=2, help="parents: the mu best candidates so far")
    parser.add_argument("--sigma", type=float, default=0.5, help="log-normal mutation strength")
    parser.add_argument("--seed", type=int, default=0, help="seed of the evolution and of every candidate's training")
    parser.add_argument("--select", choices=SELECT, default="zipf", help="selection fitness (default: zipf, unlabeled)")
    parser.add_argument("--clusters", type=int, default=0, help="k-means k (0: number of classes of the labeled set)")
    parser.add_argument("--zipf-s", type=float, default=1.0, help="Zipf exponent of the prior (ELo: 1)")
    parser.add_argument("--fitness-videos", type=int, default=0, help="at most this many videos per fitness split (0: all)")
    parser.add_argument("--knn-queries", choices=("test", "heldout"), default="test",
                        help="kNN fitness queries: the test split (default) or held-out half of the train split")
    parser.add_argument("--validation-seed", type=int, default=-1, metavar="S",
                        help="synthetic recipes: score the fitness on the synthetic dataset of generator seed S (disjoint "
                             "videos: its train split is the labeled memory, its test split the queries), so that the "
                             "search never reads the test split of the recipe's dataset (-1: off)")
    parser.add_argument("--set", nargs="+", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="recipe overrides for every candidate and the best recipe")
    parser.add_argument("--eval-set", nargs="+", default=[], metavar="KEY=VALUE", dest="eval_overrides",
                        help="videossl eval overrides for the fitness data (non-synthetic recipes: data.format, data.root)")
    parser.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: torch's default)")


def run(args: argparse.Namespace) -> int:
    if args.threads > 0:
        torch.set_num_threads(args.threads)
    for key in ("generations", "population", "steps", "mu"):
        if getattr(args, key) < 1:
            raise UserError(f"--{key}: must be >= 1, got {getattr(args, key)}")
    if args.sigma <= 0:
        raise UserError(f"--sigma: must be > 0, got {args.sigma}")
    recipe = find_recipes([args.recipe], False)[0]
    args.recipe_path = str(recipe)
    cfg = load_pretrain_config(recipe, args.overrides)
    if cfg.method.name != "elo":
        raise UserError(f"{recipe}: method.name is '{cfg.method.name}'; the search evolves ELo's loss weights (elo)")
    args.start = {t: float(cfg.method.weights[t]) for t in tasks()}  # generation 0's centre
    fitness_data_overrides(cfg, args)  # fails early on a non-synthetic recipe without --eval-set
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    check_settings(out, args)
    log_path = out / "candidates.csv"
    for generation in range(args.generations):
        rows = read_log(log_path)
        done = {(r["generation"], r["id"]) for r in rows}
        for cid, weights in enumerate(population(generation, rows, args)):
            if (generation, cid) in done:
                continue
            shown = " ".join(f"{t}={v:.3g}" for t, v in weights.items())
            print(f"=== generation {generation} candidate {cid}: {shown}", flush=True)
            row = run_candidate(recipe, generation, cid, weights, out, args)
            append_log(log_path, row)
            print(f"    zipf_kl {row['zipf_kl']:.4f}  uniform_kl {row['uniform_kl']:.4f}  knn_top1 "
                  f"{row['knn_top1']:.3f}  clusters [{row['cluster_sizes']}]  {row['minutes']:.1f} min", flush=True)
    summary = summarize(read_log(log_path), out, args)
    best = summary["best"]
    print(f"\nbest (generation {best['generation']}, id {best['id']}): "
          + " ".join(f"{t}={best[t]:.3g}" for t in tasks()))
    print(f"Spearman(Zipf fitness, kNN top-1) over {summary['candidates']} candidates: {summary['spearman_zipf_vs_knn']}")
    print(f"wrote {log_path}, {out / 'fitness.png'}, {out / 'summary.json'}, {out / 'best_recipe.yaml'}")
    return 0
