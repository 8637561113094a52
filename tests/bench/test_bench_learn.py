"""``videossl bench learn`` end to end on one recipe at CI size (2 steps, a few 32 px videos), plus its table logic."""
from __future__ import annotations

import argparse
import json

import pytest
import torch

from videossl.bench import learn
from videossl.errors import UserError


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    learn.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_one_recipe_end_to_end_then_rerun_skips_training(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("VIDEOSSL_CACHE", str(tmp_path / "cache"))
    out, doc = tmp_path / "out", tmp_path / "docs" / "learn.md"
    argv = ("--recipes", "simclr_synthetic_tiny3d", "--tiny", "--out", str(out), "--threads", "1", "--write-doc", str(doc))
    assert learn.run(_args(*argv)) == 0

    rows = json.loads((out / "learn.json").read_text())["rows"]
    assert len(rows) == 1
    row = rows[0]
    assert (row["recipe"], row["method"], row["backbone"], row["steps"], row["tiny"]) == \
        ("simclr_synthetic_tiny3d", "simclr", "tiny_r3d", 2, True)
    for key in ("linear_top1", "knn_top1", "random_linear_top1", "random_knn_top1"):
        assert 0.0 <= row[key] <= 1.0, key
    assert row["beats_random"] == (row["linear_top1"] > row["random_linear_top1"] and row["knn_top1"] > row["random_knn_top1"])
    assert row["pretrain_minutes"] > 0 and row["final_loss"] is not None
    # the SSL encoder and the random-init baseline were evaluated with the pretraining clip geometry
    linear = json.loads((out / "simclr_synthetic_tiny3d" / "eval" / "linear.json").read_text())
    assert (linear["data"]["num_frames"], linear["data"]["crop_size"]) == (4, 32)
    # random init is the recipe's architecture, residual-frame input included, seeded like the run
    [random_json] = out.glob("random-tiny_r3d-*.json")
    random_cache = json.loads(random_json.read_text())
    random_encoder = torch.load(random_json.with_suffix("") / "encoder.pt", weights_only=True)
    assert random_encoder["kwargs"]["input_transform"] == "residual"
    assert len(random_cache) == 1 and random_cache[0]["result"]["linear_top1"] == row["random_linear_top1"]
    table = (out / "learn.md").read_text()
    assert table.count("| simclr_synthetic_tiny3d | simclr | tiny_r3d |") == 1
    assert f"{100 * row['knn_top1']:.1f}" in table
    assert "| simclr_synthetic_tiny3d |" in doc.read_text() and "```\n" in doc.read_text()
    assert (row["num_test"], row["num_classes"]) == (12, 12) and "chance is 8.3%" in doc.read_text()

    # a rerun finds the finished run: no new training rows, the same minutes, both evaluations from their caches
    metrics_before = (out / "simclr_synthetic_tiny3d" / "pretrain" / "metrics.csv").read_text()
    first_out = capsys.readouterr().out
    assert f"{random_json.stem}/encoder.pt) [%]" in first_out and "pretrain/encoder.pt) [%]" in first_out
    assert learn.run(_args(*argv)) == 0
    again = json.loads((out / "learn.json").read_text())["rows"]
    assert len(again) == 1 and again[0]["pretrain_minutes"] == row["pretrain_minutes"]
    assert (out / "simclr_synthetic_tiny3d" / "pretrain" / "metrics.csv").read_text() == metrics_before
    assert len(json.loads(random_json.read_text())) == 1
    rerun_out = capsys.readouterr().out
    # neither the SSL encoder nor random init was evaluated again
    assert "encoder.pt) [%]" not in rerun_out


def test_recipe_selection_and_bad_recipes(tmp_path):
    every = learn.find_recipes(None, True)
    names = [p.stem for p in every]
    assert "simclr_synthetic_tiny3d" in names and "mae_synthetic_tiny_videomae" in names
    assert all("_synthetic_" in n for n in names)
    assert learn.find_recipes(["byol_synthetic_tiny3d.yaml", "byol_synthetic_tiny3d"], False)[0].stem == "byol_synthetic_tiny3d"
    assert len(learn.find_recipes(["simclr_synthetic_tiny3d"], True)) == len(every)  # no duplicate
    with pytest.raises(UserError, match="no recipe 'simclr_synthtic'"):
        learn.find_recipes(["simclr_synthtic"], False)
    with pytest.raises(UserError, match="--all"):
        learn.find_recipes(None, False)
    with pytest.raises(UserError, match="synthetic recipes only"):
        learn.run(_args("--recipes", "moco_v2_k400_slow_r50", "--out", str(tmp_path / "out")))
    with pytest.raises(UserError, match="--epochs"):
        learn.run(_args("--all", "--epochs", "0"))


def test_table_keeps_earlier_rows_and_shows_failures():
    old = [{"recipe": "a", "method": "m", "backbone": "b", "linear_top1": 0.5, "knn_top1": 0.4,
            "random_linear_top1": 0.3, "random_knn_top1": 0.45, "beats_random": False, "pretrain_minutes": 1.0},
           {"recipe": "b", "error": "old failure"}]
    new = [{"recipe": "b", "error": "non-finite loss"}, {**old[0], "recipe": "c", "beats_random": True}]
    merged = learn.merge_rows(old, new)
    assert [r["recipe"] for r in merged] == ["a", "b", "c"] and merged[1]["error"] == "non-finite loss"
    lines = learn.format_table(merged).splitlines()
    assert lines[2].startswith("| a | m | b | 50.0 | 40.0 | 30.0 | 45.0 | no |")
    assert "failed: non-finite loss" in lines[3] and "| yes |" in lines[4]


def test_a_changed_recipe_does_not_silently_reuse_the_old_run(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEOSSL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    run_dir = out / "simclr_synthetic_tiny3d" / "pretrain"
    run_dir.mkdir(parents=True)
    (run_dir / "last.ckpt").write_bytes(b"")
    (run_dir / "config.yaml").write_text("method:\n  name: simclr\n  temperature: 0.5\n")
    assert learn.run(_args("--recipes", "simclr_synthetic_tiny3d", "--tiny", "--out", str(out))) == 1
    row = json.loads((out / "learn.json").read_text())["rows"][0]
    assert "different configuration" in row["error"] and "failed:" in (out / "learn.md").read_text()


def test_per_class_table_has_random_init_then_one_column_per_recipe():
    rows = [{"recipe": "simclr_synthetic_tiny3d", "method": "simclr", "linear_per_class": {"left": 0.5, "up": 1.0},
             "random_linear_per_class": {"left": 0.25, "up": 0.0}},
            {"recipe": "b", "error": "crashed"},
            {"recipe": "vcop_synthetic_tiny3d", "method": "vcop", "linear_per_class": {"left": 0.75, "up": None}}]
    assert learn.format_per_class(rows).splitlines() == [
        "| class | random init | simclr_tiny3d | vcop_tiny3d |", "|---|---:|---:|---:|",
        "| left | 25 | 50 | 75 |", "| up | 0 | 100 | - |"]
    assert learn.format_per_class(rows[:1]) == ""  # one recipe: nothing to compare


def test_config_differences_ignore_settings_added_after_the_run():
    saved = {"train": {"epochs": 8, "seed": 0}, "data": {"crop_size": 48}}
    newer = {"train": {"epochs": 8, "seed": 0, "compile": False}, "data": {"crop_size": 48, "decode_timeout_s": 60.0}}
    assert learn.config_differences(saved, newer) == []
    assert learn.config_differences(saved, {**newer, "train": {"epochs": 20, "seed": 0}}) == ["train.epochs"]
    assert learn.config_differences({**saved, "method": {"name": "byol"}}, newer) == ["method"]


def test_num_test_resizes_only_the_evaluation_test_split():
    data = ["data.format=synthetic", "data.synthetic.num_train=300", "data.synthetic.num_test=150", "data.crop_size=48"]
    resized = learn.with_num_test(data, 600)
    assert "data.synthetic.num_test=600" in resized and "data.synthetic.num_test=150" not in resized
    assert set(data) - {"data.synthetic.num_test=150"} <= set(resized)
    assert learn.with_num_test(data, None) == data
    with pytest.raises(UserError, match="--num-test"):
        learn.with_num_test(data, 0)
