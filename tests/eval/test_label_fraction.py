"""Low-shot training sets (finetune / attentive ``label_fraction``): per class, at least one video per class, seeded,
reproducible, listed in the output directory and reported in the result JSON."""
from __future__ import annotations

import json
from types import SimpleNamespace

import pytest

from videossl.data.datasets import DatasetIndex, VideoEntry
from videossl.errors import UserError
from videossl.eval.label_subset import apply_label_fraction, label_subset


def _index(sizes=(10, 20, 3)) -> DatasetIndex:
    entries = [VideoEntry(f"/v/c{c}_{k:02d}.mp4", c) for c, size in enumerate(sizes) for k in range(size)]
    return DatasetIndex(entries, [f"class{c}" for c in range(len(sizes))])


def _counts(index: DatasetIndex) -> list[int]:
    return [sum(e.label == c for e in index.entries) for c in range(len(index.class_names))]


def test_the_fraction_is_taken_per_class_with_at_least_one_video():
    index = _index((10, 20, 3))
    assert _counts(label_subset(index, 0.1, seed=0)) == [1, 2, 1]  # 0.3 of class 2 rounds to 0: kept at 1
    assert _counts(label_subset(index, 0.5, seed=0)) == [5, 10, 2]
    assert _counts(label_subset(_index((200, 100)), 0.01, seed=0)) == [2, 1]
    assert label_subset(index, 1.0, seed=0) is index


def test_the_subset_is_seeded_and_reproducible():
    index = _index((40, 40, 40))
    first = [e.path for e in label_subset(index, 0.1, seed=3).entries]
    assert first == [e.path for e in label_subset(index, 0.1, seed=3).entries]
    assert first != [e.path for e in label_subset(index, 0.1, seed=4).entries]
    assert first == sorted(first) and set(first) <= {e.path for e in index.entries}  # index order, real entries


def test_the_list_is_written_and_reported(tmp_path):
    index = _index((10, 20, 3))
    settings = SimpleNamespace(label_fraction=0.1, label_seed=None)
    subset, info = apply_label_fraction(index, settings, run_seed=7, out_dir=tmp_path, split_id=1)
    lines = (tmp_path / "label_subset.txt").read_text().splitlines()
    assert [line.split("\t")[0] for line in lines] == [e.path for e in subset.entries]
    assert lines[0].split("\t")[1:] == ["0", "class0"]
    assert info == {"fraction": 0.1, "seed": 7, "num_videos": 4, "of": 33, "num_classes": 3, "per_class_min": 1,
                    "per_class_max": 2, "file": str(tmp_path / "label_subset.txt")}
    # label_seed overrides the run seed; other splits get their own file
    _, info = apply_label_fraction(index, SimpleNamespace(label_fraction=0.1, label_seed=11), 7, tmp_path, 2)
    assert info["seed"] == 11 and (tmp_path / "label_subset_split2.txt").is_file()
    assert apply_label_fraction(index, SimpleNamespace(label_fraction=1.0, label_seed=None), 7, tmp_path, 1) == (index, None)


def test_a_fraction_outside_0_1_is_refused():
    from videossl.eval.config import load_eval_config

    for bad in ("0", "1.5", "-0.1"):
        with pytest.raises(UserError, match="finetune.label_fraction"):
            load_eval_config("random:tiny_r3d", None, [f"finetune.label_fraction={bad}"])


def test_low_shot_finetuning_end_to_end(colour_folder_dataset, tmp_path):
    from videossl.eval import load_eval_config, run_finetune

    cfg = load_eval_config("random:tiny_r3d", None, [
        "data.format=folder", f"data.root={colour_folder_dataset}", "data.num_frames=4", "data.frame_stride=2",
        "data.crop_size=32", "data.num_workers=0", "data.batch_size=6", "test.num_clips=1", "test.num_crops=1",
        "finetune.epochs=1", "finetune.batch_size=3", "finetune.label_fraction=0.25", "finetune.label_seed=5",
        "progress=false", f"out_dir={tmp_path}"])
    split = run_finetune(cfg)["splits"][0]
    assert split["num_train"] == 3 and split["label_subset"]["num_classes"] == 3  # 1 of 4 per class
    written = json.loads((tmp_path / "finetune.json").read_text())["splits"][0]["label_subset"]
    assert written["seed"] == 5 and written["num_videos"] == 3
    listed = (tmp_path / "label_subset.txt").read_text().splitlines()
    assert sorted(line.split("\t")[2] for line in listed) == ["blue", "green", "red"]


def test_low_shot_linear_probe_keeps_knn_on_every_video(colour_folder_dataset, tmp_path):
    from videossl.eval import load_eval_config
    from videossl.eval.frozen import run_frozen_protocols

    cfg = load_eval_config("random:tiny_r3d", None, [
        "data.format=folder", f"data.root={colour_folder_dataset}", "data.num_frames=4", "data.frame_stride=2",
        "data.crop_size=32", "data.num_workers=0", "data.batch_size=6", "test.num_clips=1", "test.num_crops=1",
        "linear.epochs=2", "linear.train_clips=2", "linear.tsne=false", "linear.label_fraction=0.5",
        "progress=false", f"out_dir={tmp_path}"])
    results = run_frozen_protocols(cfg, ("linear", "knn"))
    linear, knn = results["linear"]["splits"][0], results["knn"]["splits"][0]
    assert linear["num_train"] == 6 and linear["label_subset"]["per_class_max"] == 2
    assert knn["num_train"] == 12 and "label_subset" not in knn
    assert len((tmp_path / "label_subset.txt").read_text().splitlines()) == 6
