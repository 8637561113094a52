"""``videossl bench factors`` (issue 23) end to end on a stub factor dataset (a few 32 px MP4s with three labels in
the layout of ``videossl.data.synthetic_factors``), plus its standard errors, verdicts, table and doc section."""
from __future__ import annotations

import argparse
import csv
import json
import math
from pathlib import Path

import numpy as np
import pytest
import torch

from videossl.bench import learn_factors
from videossl.data import synthetic_factors
from videossl.data.synthetic import write_video
from videossl.data.datasets import DatasetIndex, VideoEntry
from videossl.eval import factors as eval_factors
from videossl.eval.features import CachedFeatures
from videossl.eval.factors import binomial_se

FACTORS = learn_factors.FACTORS
CLASSES = {"appearance": ["red", "green"], "motion": ["left", "right"], "arrow": ["forward", "reversed"]}


def _video(appearance: int, motion: int, arrow: int, rng: np.random.Generator) -> np.ndarray:
    """(8, 32, 32, 3) uint8: a coloured square (appearance) sliding left or right (motion), maybe reversed."""
    frames = np.full((8, 32, 32, 3), 40, dtype=np.uint8) + rng.integers(0, 20, (8, 32, 32, 3), dtype=np.uint8)
    colour = [(220, 40, 40), (40, 220, 40)][appearance]
    for t in range(8):
        x = 4 + 2 * t if motion == 0 else 18 - 2 * t
        frames[t, 10:22, x:x + 10] = colour
    return frames[::-1] if arrow else frames


def make_stub(root: Path, num_pool: int = 8, num_train: int = 8, num_test: int = 8) -> Path:
    """The factor dataset's layout: pool/ train/ test/ MP4s, labels.csv, factors/<factor>/{train,test}.csv with
    classes.txt. The labels cycle through all 8 combinations, so they are independent."""
    rng = np.random.default_rng(0)
    rows = []
    for split, count in (("pool", num_pool), ("train", num_train), ("test", num_test)):
        (root / split).mkdir(parents=True, exist_ok=True)
        for i in range(count):
            labels = ((i >> 0) & 1, (i >> 1) & 1, (i >> 2) & 1)
            path = root / split / f"{split}_{i:03d}.mp4"
            write_video(path, _video(*labels, rng), fps=8)
            rows.append((split, f"{split}/{path.name}", *labels))
    with open(root / "labels.csv", "w", newline="") as handle:
        csv.writer(handle).writerows([("split", "path", *FACTORS), *rows])
    for k, factor in enumerate(FACTORS):
        folder = root / "factors" / factor
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "classes.txt").write_text("".join(f"{c}\n" for c in CLASSES[factor]))
        for split in ("train", "test"):
            listed = [r for r in rows if r[0] == split][::-1] if k else [r for r in rows if r[0] == split]
            with open(folder / f"{split}.csv", "w", newline="") as handle:  # other factors list in another order
                csv.writer(handle).writerows([("path", "label")] + [(f"../../{r[1]}", CLASSES[factor][r[2 + k]])
                                                                    for r in listed])
    return root


def _args(*argv: str) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    learn_factors.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_binomial_standard_error():
    assert binomial_se(0.5, 100) == pytest.approx(0.05)
    assert binomial_se(0.9, 400) == pytest.approx(math.sqrt(0.09 / 400))
    assert binomial_se(1.0, 10) == 0.0 and binomial_se(0.3, 0) == 0.0


def test_beats_random_needs_two_standard_errors_of_the_difference():
    def numbers(p, n=100):
        return {"linear_top1": p, "linear_se": binomial_se(p, n), "knn_top1": p, "knn_se": binomial_se(p, n)}

    # SE of the difference at 0.5 vs 0.5, n=100: sqrt(2) * 0.05 = 0.0707; two of them: 0.141
    ssl = {"appearance": numbers(0.65), "motion": numbers(0.62), "arrow": numbers(0.5)}
    rand = {f: numbers(0.5) for f in FACTORS}
    verdict = learn_factors.beats_random(ssl, rand)
    assert verdict == {"appearance": ["linear", "knn"], "motion": [], "arrow": []}
    assert learn_factors.beats_text(verdict) == "appearance (lin, kNN)"
    assert learn_factors.beats_text({"motion": []}) == "none"


def test_factor_protocol_end_to_end(tmp_path, monkeypatch):
    """One tiny recipe, 2 steps: one feature extraction per encoder, three factor probes, SEs from the counts,
    random-init and (supervised) ceiling rows, the doc section replaced in place; a rerun retrains nothing."""
    monkeypatch.setenv("VIDEOSSL_CACHE", str(tmp_path / "cache"))
    root = make_stub(tmp_path / "factors-data")
    requested = []
    monkeypatch.setattr(learn_factors, "ensure_synthetic_factors", lambda r=None, **kw: requested.append(kw) or root)
    extractions = []
    real = eval_factors.train_and_test_features
    monkeypatch.setattr(eval_factors, "train_and_test_features", lambda *a, **k: extractions.append(1) or real(*a, **k))
    out, doc = tmp_path / "out", tmp_path / "docs" / "benchmarks-factors.md"
    doc.parent.mkdir()
    doc.write_text("# Factors\n\n<!-- ceilings:begin -->\nH3's ceilings\n<!-- ceilings:end -->\n")
    argv = ("--recipes", "simclr_synthetic_tiny3d", "--tiny", "--ceilings", "--out", str(out), "--threads", "1",
            "--set", "train.seed=3", "--write-doc", str(doc))
    assert learn_factors.run(_args(*argv)) == 0
    assert requested == [learn_factors.TINY_SIZES]

    saved = json.loads((out / "factors.json").read_text())
    [row] = saved["rows"]
    assert (row["recipe"], row["variant"], row["method"], row["steps"]) == \
        ("simclr_synthetic_tiny3d", "rgb", "simclr", 2)
    config = (out / "simclr_synthetic_tiny3d" / "pretrain" / "config.yaml").read_text()
    assert f"root: {root}" in config and "split: pool" in config and "input_transform: rgb" in config
    assert len(extractions) == 2  # the SSL encoder and random init: one extraction each for all three factors
    base = saved["baselines"][row["baseline"]]
    assert row["baseline"].endswith(" 4x1@32") and base["tag"].startswith("tiny_r3d-")  # seed 3: a tagged baseline
    for numbers in (row["factors"], base["random"], base["supervised"]):
        assert set(numbers) == set(FACTORS)
        for factor, n in numbers.items():
            assert (n["num_test"], n["num_classes"]) == (8, 2), factor
            assert n["linear_se"] == pytest.approx(math.sqrt(n["linear_top1"] * (1 - n["linear_top1"]) / 8))
    for n in row["factors"].values():
        assert n["knn_se"] == pytest.approx(binomial_se(n["knn_top1"], 8)) and n["num_train"] == 8
    random_encoder = torch.load(out / f"random-{base['tag']}" / "encoder.pt", weights_only=True)
    assert random_encoder["kwargs"]["input_transform"] == "rgb"

    lines = (out / "factors.md").read_text().splitlines()
    assert lines[0].startswith("| method | backbone | appearance lin / kNN (%) | motion lin / kNN (%) | arrow lin")
    assert [line.split(" | ")[0] for line in lines[2:]] == ["| random init", "| supervised (ceiling, fine-tuned)",
                                                         "| simclr"]
    a = row["factors"]["appearance"]
    assert f"{100 * a['linear_top1']:.1f} ± {100 * a['linear_se']:.1f} / {100 * a['knn_top1']:.1f} ±" in lines[4]
    assert all(line.count("|") == lines[0].count("|") for line in lines)
    text = doc.read_text()
    assert text.startswith("# Factors\n\n<!-- ceilings:begin -->\nH3's ceilings\n<!-- ceilings:end -->\n")
    assert text.count(learn_factors.DOC_BEGIN) == 1 and lines[4] in text

    # without ceilings the supervised row says where they are, in as many columns
    no_ceilings = {key: {**base, "supervised": None} for key, base in saved["baselines"].items()}
    bare = learn_factors.format_table(saved["rows"], no_ceilings)
    assert "| supervised (ceiling, fine-tuned) | tiny_r3d (4x1@32) | not run here (--ceilings) |" in bare
    assert len({line.count("|") for line in bare.splitlines()}) == 1

    # a rerun: no training, no new extraction; the doc section is replaced, not appended
    assert learn_factors.run(_args(*argv)) == 0
    assert len(extractions) == 2 and json.loads((out / "factors.json").read_text())["rows"][0]["steps"] == 2
    assert doc.read_text().count(learn_factors.DOC_BEGIN) == 1


def test_bad_input_is_one_line():
    with pytest.raises(learn_factors.UserError, match="--data: expected KEY=NUMBER"):
        learn_factors.parse_sizes(["num_pool"])
    with pytest.raises(learn_factors.UserError, match="--data: expected KEY=NUMBER"):
        learn_factors.parse_sizes(["size=big"])
    assert learn_factors.parse_sizes(["num_pool=60", "min_seconds=1.5"]) == {"num_pool": 60, "min_seconds": 1.5}
    with pytest.raises(learn_factors.UserError, match="synthetic recipes only"):
        learn_factors.check_synthetic([learn_factors.find_recipes(["moco_v2_k400_slow_r50"], False)[0]])


def test_tiny_sizes_and_defaults_are_the_factor_datasets_parameters():
    assert set(learn_factors.TINY_SIZES) <= set(synthetic_factors.DEFAULTS)
    assert learn_factors.FACTORS == synthetic_factors.FACTORS


def test_relabel_matches_videos_by_path_whatever_the_manifest_order(tmp_path):
    paths = [str(tmp_path / "train" / f"v{i}.mp4") for i in range(4)]
    features = CachedFeatures(torch.arange(4.0).view(4, 1, 1), torch.zeros(4, dtype=torch.long), ["a"], (paths[2],))
    kept = eval_factors.kept_paths(DatasetIndex([VideoEntry(p, 0) for p in paths], ["a"]), features.skipped)
    assert kept == [paths[0], paths[1], paths[3]]
    features = features._replace(features=features.features[[0, 1, 3]], labels=features.labels[:3])
    # the manifest lists the videos in another order, through a relative path
    manifest = DatasetIndex([VideoEntry(str(tmp_path / "x" / ".." / "train" / f"v{i}.mp4"), label)
                             for i, label in ((3, 1), (2, 0), (1, 1), (0, 0))], ["fwd", "rev"])
    out = eval_factors.relabel(features, kept, manifest, "arrow/train.csv")
    assert out.labels.tolist() == [0, 1, 1] and out.class_names == ["fwd", "rev"]
    assert torch.equal(out.features, features.features)
    with pytest.raises(learn_factors.UserError, match="arrow/train.csv: 1 of the evaluated videos are not listed"):
        eval_factors.relabel(features, kept, DatasetIndex(manifest.entries[:2] + manifest.entries[3:], ["f", "r"]),
                             "arrow/train.csv")
