"""``videossl search elo``: a 2-generation x 2-candidate search of 2 steps each at 32 px / 4 frames, its CSV,
plot, summary and best recipe, resuming, and its errors."""
import argparse
import csv

import pytest

from videossl.errors import UserError
from videossl.search import elo as search

TINY = ["data.synthetic.num_pool=8", "data.synthetic.num_train=12", "data.synthetic.num_test=12",
        "data.synthetic.size=32", "data.crop_size=32", "data.num_frames=4", "data.frame_stride=1", "data.num_workers=0",
        "train.batch_size=4", "method.proj_hidden_dim=32", "method.proj_dim=16"]


def _args(tmp_path, generations=2, **changes):
    parser = argparse.ArgumentParser()
    search.add_arguments(parser)
    args = parser.parse_args(["elo_synthetic_tiny3d", "--out", str(tmp_path / "search"), "--generations",
                              str(generations), "--population", "2", "--steps", "1", "--threads", "1",
                              "--set", *TINY, f"data.root={tmp_path / 'data'}"])
    for key, value in changes.items():
        setattr(args, key, value)
    return args


def test_tiny_search_logs_plots_resumes_and_writes_a_loadable_recipe(tmp_path, monkeypatch):
    from videossl.config import load_pretrain_config
    from videossl.methods.elo import TASKS

    assert search.run(_args(tmp_path)) == 0
    out = tmp_path / "search"
    rows = list(csv.DictReader((out / "candidates.csv").open()))
    assert [(r["generation"], r["id"]) for r in rows] == [("0", "0"), ("0", "1"), ("1", "0"), ("1", "1")]
    assert all(float(rows[0][t]) == 1.0 for t in TASKS)  # generation 0 starts from equal weights
    assert all(float(r["zipf_kl"]) >= 0 and 0 <= float(r["knn_top1"]) <= 1 for r in rows)
    assert (out / "fitness.png").stat().st_size > 0
    best = load_pretrain_config(out / "best_recipe.yaml")
    assert best.method.name == "elo" and best.data.crop_size == 32

    # Resuming: nothing is retrained for finished generations; a third generation is added from the log.
    trained = []
    real = search.run_candidate
    monkeypatch.setattr(search, "run_candidate", lambda *a, **k: trained.append(a[1:3]) or real(*a, **k))
    assert search.run(_args(tmp_path)) == 0
    assert trained == []
    assert search.run(_args(tmp_path, generations=3)) == 0
    assert trained == [(2, 0), (2, 1)]
    rows = search.read_log(out / "candidates.csv")
    again = search.population(2, [r for r in rows if r["generation"] < 2], _args(tmp_path, generations=3))
    assert again == [{t: r[t] for t in TASKS} for r in rows if r["generation"] == 2]  # rebuilt from the CSV


def test_changed_settings_and_wrong_method_are_user_errors(tmp_path):
    (tmp_path / "search").mkdir()
    search.check_settings(tmp_path / "search", _args(tmp_path))
    with pytest.raises(UserError, match="sigma"):
        search.check_settings(tmp_path / "search", _args(tmp_path, sigma=0.9))
    # A search logged before --knn-queries existed (no such key in search.json) resumes with the default.
    import json
    settings = json.loads((tmp_path / "search" / "search.json").read_text())
    del settings["knn_queries"]
    (tmp_path / "search" / "search.json").write_text(json.dumps(settings))
    search.check_settings(tmp_path / "search", _args(tmp_path))
    with pytest.raises(UserError, match="knn_queries"):
        search.check_settings(tmp_path / "search", _args(tmp_path, knn_queries="heldout"))
    with pytest.raises(UserError, match="method.name is 'simclr'"):
        search.run(_args(tmp_path, recipe="simclr_synthetic_tiny3d", out=str(tmp_path / "other")))


def test_validation_seed_scores_another_generator_seed_and_refuses_the_recipe_seed(tmp_path):
    from videossl.bench.learn import find_recipes
    from videossl.config import load_pretrain_config

    args = _args(tmp_path, validation_seed=1, eval_overrides=["data.synthetic.num_test=600"])
    cfg = load_pretrain_config(find_recipes([args.recipe], False)[0], args.overrides)
    overrides = search.fitness_data_overrides(cfg, args)
    seeds = [o for o in overrides if o.startswith("data.synthetic.seed=")]
    assert seeds == ["data.synthetic.seed=1"]  # the recipe's seed 0 is replaced, not followed by it
    assert overrides[-1] == "data.synthetic.num_test=600"
    # never the pretraining dataset's folder: regenerating it there with seed 1 would replace the recipe's data
    assert [o for o in overrides if o.startswith("data.root=")] == [f"data.root={tmp_path / 'data'}-validation-seed1"]
    with pytest.raises(UserError, match="validation-seed 0"):
        search.fitness_data_overrides(cfg, _args(tmp_path, validation_seed=0))
    assert "data.synthetic.seed=0" in search.fitness_data_overrides(cfg, _args(tmp_path))  # off by default
