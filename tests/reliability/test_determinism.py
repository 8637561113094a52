"""The same seed gives the same training metrics, weights and evaluation numbers twice on CPU (GPU notes are in
docs/reliability.md)."""
import torch

from videossl.config import load_pretrain_config
from videossl.engine.checkpoint import load_checkpoint
from videossl.engine.trainer import pretrain
from videossl.eval import load_eval_config, run_frozen_protocols
from videossl.eval.features import clear_feature_cache


def train_and_evaluate(pool, out, tools):
    overrides = tools.tiny_args(pool, out / "run", 3, frames=2, extra=["data.num_workers=1"])  # a worker process too
    run_dir = pretrain(load_pretrain_config(None, ["method.name=simclr", *overrides]))
    clear_feature_cache()
    ecfg = load_eval_config(str(run_dir / "encoder.pt"), None, [
        "data.format=folder", f"data.root={pool.parent}", "data.num_frames=2", "data.crop_size=32",
        "data.num_workers=0", "test.num_clips=1", "test.num_crops=1", "linear.train_clips=1", "linear.epochs=5",
        "knn.k=3", "progress=false", f"out_dir={out / 'eval'}"])
    results = run_frozen_protocols(ecfg, ("linear", "knn"))
    return run_dir, {p: (results[p]["top1"], results[p]["top5"]) for p in ("linear", "knn")}


def test_same_seed_same_metrics_twice(tiny_pool, tmp_path, tools):
    run_a, eval_a = train_and_evaluate(tiny_pool, tmp_path / "a", tools)
    run_b, eval_b = train_and_evaluate(tiny_pool, tmp_path / "b", tools)
    rows_a, rows_b = tools.metric_rows(run_a), tools.metric_rows(run_b)
    assert len(rows_a) == 3 and rows_a == rows_b  # every logged number except wall-clock throughput
    a, b = load_checkpoint(run_a / "last.ckpt"), load_checkpoint(run_b / "last.ckpt")
    assert all(torch.equal(v, b["model"][k]) for k, v in a["model"].items())
    assert eval_a == eval_b
