"""Every protocol end to end on tiny real mp4s with ``random:tiny_r3d`` (T=4, 32 px, 2 clips x 3 crops)."""
import json

import pytest
import torch

from videossl.errors import UserError
from videossl.eval import features as features_module
from videossl.eval import load_eval_config, run_finetune, run_frozen_protocols, run_knn


def _cfg(root, out_dir, *extra):
    return load_eval_config("random:tiny_r3d", None, [
        "data.format=folder", f"data.root={root}", "data.num_frames=4", "data.frame_stride=2", "data.crop_size=32",
        "data.num_workers=0", "data.batch_size=4", "test.num_clips=2", "test.num_crops=3", "linear.train_clips=2",
        "linear.epochs=30", "progress=false", f"out_dir={out_dir}", *extra])


@pytest.fixture(autouse=True)
def _fresh_cache():
    features_module.clear_feature_cache()
    yield
    features_module.clear_feature_cache()


def test_frozen_protocols_share_one_extraction_and_write_json(colour_folder_dataset, tmp_path, monkeypatch):
    calls = []
    real = features_module.extract_features

    def counting(*args, **kwargs):
        calls.append(kwargs.get("desc"))
        return real(*args, **kwargs)

    monkeypatch.setattr(features_module, "extract_features", counting)
    cfg = _cfg(colour_folder_dataset, tmp_path)
    results = run_frozen_protocols(cfg, ("linear", "knn", "retrieval"))
    assert len(calls) == 2  # train and test features, once for all three protocols

    for name, keys in (("linear", ["top1", "top5"]), ("knn", ["top1", "top5"]),
                       ("retrieval", ["R@1", "R@5", "R@10", "R@20"])):
        written = json.loads((tmp_path / f"{name}.json").read_text())
        assert written["encoder"] == "random:tiny_r3d"
        assert written["splits"][0]["num_test"] == 6 and written["splits"][0]["num_classes"] == 3
        for key in keys:
            assert 0.0 <= written[key] <= 1.0
            assert written[key] == pytest.approx(results[name][key])
    for name in ("linear", "knn"):  # per-class top-1, weighted by each class's test videos, gives back top-1
        split = json.loads((tmp_path / f"{name}.json").read_text())["splits"][0]
        per_class = split["per_class_top1"]
        assert len(per_class) == 3 and sum(per_class.values()) / 3 == pytest.approx(split["top1"])  # 2 test videos each
    assert (tmp_path / "tsne.png").stat().st_size > 0
    # Classes differ by colour, which even random 3D convolutions separate: a mislabelled or shuffled
    # feature/label pairing would be at chance (1/3).
    assert results["knn"]["top1"] >= 0.8
    assert results["retrieval"]["R@1"] >= 0.8

    run_knn(cfg)  # same encoder, data and views: served from the cache
    assert len(calls) == 2


def test_test_views_are_clips_times_crops(colour_folder_dataset, tmp_path):
    cfg = _cfg(colour_folder_dataset, tmp_path)
    encoder, key = features_module.load_eval_encoder(cfg.encoder)
    train, test = features_module.train_and_test_features(cfg, encoder, key, 1, torch.device("cpu"))
    assert train.features.shape == (12, 2, encoder.num_features)  # 2 clips, center crop
    assert test.features.shape == (6, 6, encoder.num_features)  # 2 clips x 3 crops
    assert train.labels.tolist() == [0] * 4 + [1] * 4 + [2] * 4
    # the three crops of a 32x32 video resized to 32 are the same pixels: same features
    assert torch.allclose(test.features[:, 0], test.features[:, 1], atol=1e-5)


def test_split_all_reports_mean_and_std_over_three_splits(colour_ucf101_dataset, tmp_path):
    cfg = load_eval_config("random:tiny_r3d", None, [
        "data.format=ucf101", f"data.root={colour_ucf101_dataset}", "data.split=all", "data.num_frames=4",
        "data.crop_size=32", "data.num_workers=0", "test.num_clips=1", "test.num_crops=1",
        "linear.train_clips=1", "knn.k=2", "progress=false", f"out_dir={tmp_path}"])
    result = run_knn(cfg)
    assert [s["split"] for s in result["splits"]] == [1, 2, 3]
    assert all(s["num_train"] == 6 and s["num_test"] == 3 for s in result["splits"])
    tops = [s["top1"] for s in result["splits"]]
    assert result["mean"]["top1"] == pytest.approx(sum(tops) / 3)
    assert result["top1"] == pytest.approx(result["mean"]["top1"])
    assert result["std"]["top1"] == pytest.approx(torch.tensor(tops).std().item(), abs=1e-6)
    assert json.loads((tmp_path / "knn.json").read_text())["std"] == result["std"]


def test_finetune_trains_and_writes_json(colour_folder_dataset, tmp_path):
    cfg = _cfg(colour_folder_dataset, tmp_path, "finetune.epochs=2", "finetune.batch_size=4",
               "finetune.warmup_epochs=1", "test.num_clips=1")
    result = run_finetune(cfg)
    written = json.loads((tmp_path / "finetune.json").read_text())
    assert 0.0 <= written["top1"] <= 1.0 and written["top5"] == 1.0  # 3 classes: top-5 is every class
    losses = written["splits"][0]["train_loss"]
    assert len(losses) == 2 and all(0 < loss < 10 for loss in losses)
    assert result["top1"] == pytest.approx(written["top1"])


def test_cli_runs_and_reports_user_errors(colour_folder_dataset, tmp_path, capsys):
    from videossl.cli import main

    args = ["eval", "knn", "random:tiny_r3d", "data.format=folder", f"data.root={colour_folder_dataset}",
            "data.num_frames=4", "data.crop_size=32", "data.num_workers=0", "test.num_clips=1",
            "progress=false", f"out_dir={tmp_path}"]
    assert main(args) == 0
    assert "top1" in capsys.readouterr().out and (tmp_path / "knn.json").is_file()
    assert main(args + ["knn.kk=3"]) == 2
    assert "knn.k" in capsys.readouterr().err
    assert main(["eval", "linear", str(tmp_path / "missing.pt"), f"data.root={colour_folder_dataset}"]) == 2
    assert "missing.pt" in capsys.readouterr().err


def test_bad_inputs_are_user_errors(colour_folder_dataset, tmp_path):
    with pytest.raises(UserError, match="unknown backbone"):
        run_knn(load_eval_config("random:no_such_net", None, [f"data.root={colour_folder_dataset}",
                                                              "data.format=folder"]))
    with pytest.raises(UserError, match="does not exist"):
        run_knn(_cfg(tmp_path / "nowhere", tmp_path))


def test_unreadable_test_video_is_left_out_not_replaced(colour_folder_dataset, tmp_path):
    import shutil

    root = tmp_path / "data"
    shutil.copytree(colour_folder_dataset, root)
    (root / "test" / "red" / "broken.mp4").write_bytes(b"not a video at all" * 10)
    result = run_knn(_cfg(root, tmp_path / "out", "test.num_clips=1", "test.num_crops=1"))
    split = result["splits"][0]
    assert split["num_test"] == 6  # 7 listed, the broken one left out (not replaced by another video)
    assert [p.endswith("broken.mp4") for p in split["skipped_unreadable"]["test"]] == [True]


def test_videos_missing_from_the_split_lists_are_a_user_error(colour_ucf101_dataset, tmp_path):
    import shutil

    root = tmp_path / "ucf"
    shutil.copytree(colour_ucf101_dataset, root)
    first_test = (root / "testlist01.txt").read_text().split()[0]
    (root / first_test).unlink()
    with pytest.raises(UserError, match="1 of 3 test videos of split 1 are missing"):
        run_knn(_cfg(root, tmp_path / "out", "data.format=ucf101"))
