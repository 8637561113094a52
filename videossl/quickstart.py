"""The quickstart (the README's main command): synthetic data -> SSL pretraining -> frozen evaluation.

1. generate the synthetic dataset once (cached);
2. pretrain the tiny 3D ResNet with rho-SimCLR on its unlabeled pool (``recipes/simclr_synthetic_tiny3d.yaml``);
3. linear probe and kNN on its labeled train/test sets, for the pretrained encoder and the same architecture at
   random initialisation, plus a supervised upper bound (the same network trained from scratch with labels);
4. print one table and write it to ``<out>/quickstart.md`` and ``quickstart.json``.

Re-running resumes: a finished pretraining run is reused (``train.resume=auto`` on the same run directory).
"""
from __future__ import annotations

import json
import time
from pathlib import Path

from omegaconf import DictConfig

from . import recipes_dir
from .config import load_pretrain_config
from .engine.trainer import pretrain
from .errors import UserError
from .eval.config import load_eval_config
from .eval.finetune import run_finetune
from .eval.frozen import run_frozen_protocols
from .eval.synthetic_protocol import EVAL_OVERRIDES, SUPERVISED_OVERRIDES, eval_data_overrides, write_random_init

QUICKSTART_RECIPE = recipes_dir() / "simclr_synthetic_tiny3d.yaml"

# Test-time views and classifier settings of the quickstart's evaluation (kept small for 2 CPU cores).
def run_quickstart(overrides: list[str] | None = None, out_dir: str | Path = "runs/quickstart",
                   supervised: bool = True, eval_overrides: list[str] | None = None) -> dict:
    """Run the quickstart; ``overrides`` change the pretraining recipe, ``eval_overrides`` the evaluation."""
    out = Path(out_dir)
    cfg = load_pretrain_config(QUICKSTART_RECIPE, [f"train.run_dir={out / 'pretrain'}", "train.resume=auto",
                                                   *(overrides or [])])
    if cfg.data.format != "synthetic":
        raise UserError("the quickstart runs on the synthetic dataset; use `videossl pretrain` for other data")

    started = time.perf_counter()
    run_dir = pretrain(cfg)
    pretrain_minutes = (time.perf_counter() - started) / 60

    data = eval_data_overrides(cfg) + EVAL_OVERRIDES + SUPERVISED_OVERRIDES + list(eval_overrides or [])
    random_init = write_random_init(cfg, out / "random_init.pt")
    rows: list[dict] = []
    encoders = [("random init", str(random_init)), (f"SSL ({cfg.method.name})", str(run_dir / "encoder.pt"))]
    for label, encoder in encoders:
        tag = "random" if encoder == str(random_init) else "ssl"
        ecfg = load_eval_config(encoder, None, data + [f"out_dir={out / ('eval-' + tag)}"])
        results = run_frozen_protocols(ecfg, ("linear", "knn"))
        rows.append({"encoder": label, "linear_top1": results["linear"]["top1"], "knn_top1": results["knn"]["top1"]})
    if supervised:
        ecfg = load_eval_config(str(random_init), None, data + [f"out_dir={out / 'supervised'}"])
        result = run_finetune(ecfg)
        rows.append({"encoder": "supervised (upper bound)", "linear_top1": result["top1"], "knn_top1": None})

    summary = {"rows": rows, "pretrain_minutes": round(pretrain_minutes, 2), "run_dir": str(run_dir),
               "total_minutes": round((time.perf_counter() - started) / 60, 2)}
    table = format_quickstart_table(rows)
    (out / "quickstart.md").write_text(table + "\n")
    (out / "quickstart.json").write_text(json.dumps(summary, indent=2))
    print("\n" + table)
    print(f"\npretraining: {pretrain_minutes:.1f} min, total {summary['total_minutes']:.1f} min; plots and "
          f"metrics in {run_dir}; table in {out / 'quickstart.md'}")
    ssl, rand = rows[1], rows[0]
    if not (ssl["linear_top1"] > rand["linear_top1"] and ssl["knn_top1"] > rand["knn_top1"]):
        print("WARNING: the SSL encoder does not beat random initialisation on both protocols; this is a defect.")
    return summary


def format_quickstart_table(rows: list[dict]) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}"

    lines = ["| encoder (tiny_r3d) | linear top-1 (%) | kNN top-1 (%) |", "|---|---:|---:|"]
    lines += [f"| {r['encoder']} | {pct(r['linear_top1'])} | {pct(r['knn_top1'])} |" for r in rows]
    return "\n".join(lines)
