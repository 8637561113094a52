"""Evaluation keeps every labelled video it can read and reports the others: a real, truncated MP4 (an interrupted
download) among real MP4s is left out, counted, listed in bad_files.csv and the result JSON, and never replaced by
another video's clip (pretraining's dataset substitutes another sample for an unreadable one; evaluation must not)."""
import csv
import json
import shutil

import pytest
import torch

from videossl.data.video_dataset import VideoDataset
from videossl.eval import features as features_module
from videossl.eval import load_eval_config, run_knn
from videossl.eval.features import extract_features, load_eval_encoder, read_split
from videossl.eval.views import multi_view_spec


def _cfg(root, out_dir):
    return load_eval_config("random:tiny_r3d", None, [
        "data.format=folder", f"data.root={root}", "data.num_frames=4", "data.frame_stride=2", "data.crop_size=32",
        "data.num_workers=0", "data.batch_size=4", "test.num_clips=1", "test.num_crops=1", "linear.train_clips=1",
        "progress=false", f"out_dir={out_dir}"])


@pytest.fixture(autouse=True)
def _fresh_cache():
    features_module.clear_feature_cache()
    yield
    features_module.clear_feature_cache()


@pytest.fixture
def with_corrupt_mp4(colour_folder_dataset, tmp_path):
    """A copy of the colour dataset whose red test folder holds a truncated copy of a real MP4, named so that it
    sorts between the two real red test videos."""
    root = tmp_path / "data"
    shutil.copytree(colour_folder_dataset, root)
    reds = sorted((root / "test" / "red").glob("*.mp4"))
    assert [p.name for p in reds] == ["v_red_g00_c01.mp4", "v_red_g01_c01.mp4"]
    data = reds[0].read_bytes()
    corrupt = root / "test" / "red" / "v_red_g00_c02.mp4"
    corrupt.write_bytes(data[: len(data) // 3])  # an interrupted download: the index is there, most frames are not
    return root, corrupt


def test_a_corrupt_mp4_is_reported_and_its_place_not_filled_by_another_video(colour_folder_dataset, with_corrupt_mp4,
                                                                           tmp_path, monkeypatch):
    root, corrupt = with_corrupt_mp4
    out = tmp_path / "out"
    decoded = []  # every (path) the dataset decoded (num_workers=0: in this process)
    real_decode = VideoDataset._decode_views

    def recording(self, current, rng):
        decoded.append(self.index.entries[current].path)
        return real_decode(self, current, rng)

    monkeypatch.setattr(VideoDataset, "_decode_views", recording)
    result = run_knn(_cfg(root, out))
    test_paths = [p for p in decoded if "/test/" in p]
    assert sorted(test_paths) == sorted(str(p) for p in (root / "test").rglob("*.mp4"))  # each once, no substitute
    split = result["splits"][0]
    assert split["num_test"] == 6 and split["num_train"] == 12  # 7 test videos listed, the corrupt one left out
    assert split["skipped_unreadable"] == {"train": [], "test": [str(corrupt)]}
    written = json.loads((out / "knn.json").read_text())
    assert written["splits"][0]["skipped_unreadable"]["test"] == [str(corrupt)]
    with open(out / "bad_files.csv", newline="") as handle:
        rows = list(csv.DictReader(handle))
    # one row, read once: no retry loaded another video in its place
    assert [(row["path"], row["count"]) for row in rows] == [(str(corrupt), "1")], rows

    # the features of the six readable test videos are exactly those of the dataset without the corrupt file
    cfg, clean_cfg = _cfg(root, out), _cfg(colour_folder_dataset, out)
    encoder, _ = load_eval_encoder("random:tiny_r3d", seed=0)
    spec = multi_view_spec(1, 1, 4, 2, 32)
    index = read_split(cfg.data, "test", 1)
    paths = [e.path for e in index.entries]
    assert len(paths) == 7 and paths.index(str(corrupt)) == 5  # blue, green, then red: between the two real reds
    got = extract_features(encoder, index, spec, cfg.data)
    clean = extract_features(encoder, read_split(clean_cfg.data, "test", 1), spec, clean_cfg.data)
    assert got.skipped == (str(corrupt),) and clean.skipped == ()
    assert torch.equal(got.labels, clean.labels)
    assert torch.allclose(got.features, clean.features)


def test_every_video_unreadable_is_a_user_error_naming_the_settings(with_corrupt_mp4, tmp_path):
    from videossl.errors import UserError

    root, corrupt = with_corrupt_mp4
    cfg = _cfg(root, tmp_path / "out")
    encoder, _ = load_eval_encoder("random:tiny_r3d", seed=0)
    index = read_split(cfg.data, "test", 1)
    only_corrupt = index._replace(entries=[e for e in index.entries if e.path == str(corrupt)])
    with pytest.raises(UserError, match="none of the 1 videos could be read.*data.decoder"):
        extract_features(encoder, only_corrupt, multi_view_spec(1, 1, 4, 2, 32), cfg.data)


def test_fine_tuning_names_the_unreadable_training_video_it_replaced(colour_folder_dataset, tmp_path):
    """Fine-tuning trains like pretraining (an unreadable training video's draw goes to another video) and says
    so in finetune.json; its test set leaves unreadable videos out like the frozen protocols."""
    from videossl.eval import run_finetune

    root = tmp_path / "data"
    shutil.copytree(colour_folder_dataset, root)
    real = sorted((root / "train" / "green").glob("*.mp4"))[0]
    corrupt = root / "train" / "green" / "v_green_g00_c02.mp4"
    corrupt.write_bytes(real.read_bytes()[: real.stat().st_size // 3])
    out = tmp_path / "out"
    result = run_finetune(load_eval_config("random:tiny_r3d", None, [
        "data.format=folder", f"data.root={root}", "data.num_frames=4", "data.frame_stride=2", "data.crop_size=32",
        "data.num_workers=0", "data.batch_size=4", "test.num_clips=1", "test.num_crops=1", "finetune.epochs=1",
        "finetune.batch_size=4", "finetune.warmup_epochs=0", "progress=false", f"out_dir={out}"]))
    split = result["splits"][0]
    assert split["replaced_in_training"] == [str(corrupt)] and split["skipped_unreadable"] == {"test": []}
    assert json.loads((out / "finetune.json").read_text())["splits"][0]["replaced_in_training"] == [str(corrupt)]
    with open(out / "bad_files.csv", newline="") as handle:
        assert [row["path"] for row in csv.DictReader(handle)] == [str(corrupt)]
