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
from .errors import UserError

QUICKSTART_RECIPE = recipes_dir() / "simclr_synthetic_tiny3d.yaml"

# Test-time views and classifier settings of the quickstart's evaluation (kept small for 2 CPU cores).
EVAL_OVERRIDES = ["test.num_clips=4", "test.num_crops=3", "linear.train_clips=3", "linear.epochs=100"]
# Supervised from scratch: AdamW at the pretraining's lr (0.03 x 16 / 256 = 1.9e-3 after the linear scaling rule);
# SGD at lr 0.025 stayed at chance after 15 epochs on the motion classes.
SUPERVISED_OVERRIDES = ["finetune.epochs=30", "finetune.warmup_epochs=2", "finetune.optimizer=adamw", "finetune.lr=0.03",
                        "finetune.weight_decay=0.05", "finetune.batch_size=16", "finetune.dropout=0.0"]


def _eval_data_overrides(cfg: DictConfig) -> list[str]:
    """The evaluation sees the same synthetic dataset and clip geometry as pretraining."""
    d, s = cfg.data, cfg.data.synthetic
    out = ["data.format=synthetic", f"data.num_frames={d.num_frames}", f"data.frame_stride={d.frame_stride}",
           f"data.crop_size={d.crop_size}", f"data.decoder={d.decoder}", f"data.num_workers={d.num_workers}",
           f"data.synthetic.num_pool={s.num_pool}", f"data.synthetic.num_train={s.num_train}",
           f"data.synthetic.num_test={s.num_test}", f"data.synthetic.size={s.size}", f"data.synthetic.seed={s.seed}"]
    if d.root:
        out.append(f"data.root={d.root}")
    return out


def run_quickstart(overrides: list[str] | None = None, out_dir: str | Path = "runs/quickstart",
                   supervised: bool = True, eval_overrides: list[str] | None = None) -> dict:
    """Run the quickstart; ``overrides`` change the pretraining recipe, ``eval_overrides`` the evaluation."""
    from .config import load_pretrain_config
    from .engine.trainer import pretrain
    from .eval.config import load_eval_config
    from .eval.finetune import run_finetune
    from .eval.frozen import run_frozen_protocols

    out = Path(out_dir)
    cfg = load_pretrain_config(QUICKSTART_RECIPE, [f"train.run_dir={out / 'pretrain'}", "train.resume=auto",
                                                   *(overrides or [])])
    if cfg.data.format != "synthetic":
        raise UserError("the quickstart runs on the synthetic dataset; use `videossl pretrain` for other data")

    started = time.perf_counter()
    run_dir = pretrain(cfg)
    pretrain_minutes = (time.perf_counter() - started) / 60

    data = _eval_data_overrides(cfg) + EVAL_OVERRIDES + SUPERVISED_OVERRIDES + list(eval_overrides or [])
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


def write_random_init(cfg: DictConfig, path: Path) -> Path:
    """The same backbone (name and kwargs, e.g. residual-frame input) at random initialisation, seeded like the
    pretraining run, as an ``encoder.pt``: the baseline of the table and the start of the supervised bound."""
    import torch

    from .backbones import create_backbone, save_encoder

    kwargs = dict(cfg.backbone.kwargs)
    torch.manual_seed(cfg.train.seed)
    save_encoder(path, create_backbone(cfg.backbone.name, **kwargs), cfg.backbone.name, kwargs)
    return path


def format_quickstart_table(rows: list[dict]) -> str:
    def pct(v):
        return "-" if v is None else f"{100 * v:.1f}"

    lines = ["| encoder (tiny_r3d) | linear top-1 (%) | kNN top-1 (%) |", "|---|---:|---:|"]
    lines += [f"| {r['encoder']} | {pct(r['linear_top1'])} | {pct(r['knn_top1'])} |" for r in rows]
    return "\n".join(lines)
