"""Issue 20, item 7: messages that misled, and the list of skipped files a run leaves behind.

Before the fix: eval with ``data.crop_size=0`` warned "skipping unreadable file" for every good video and ended in
"11 unreadable files in a row ... check the data or bad_file_log" (a setting no user can set); ``data check
--timeout 0`` marked every file bad ("decoding took longer than 0 s"); ``data check some.mp4`` parsed the video as a
CSV manifest; ``data.format=bogus`` without a root said "set it to the bogus dataset folder"; no ``bad_files.csv``
was written anywhere.
"""
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from omegaconf import OmegaConf

from videossl.data import sampling as S
from videossl.data.bad_files import (BadFile, bad_files, bad_files_summary, read_bad_files_csv, report_bad_files,
                                     write_bad_files_csv)
from videossl.data.datasets import DatasetError, DatasetIndex, VideoEntry, read_dataset
from videossl.data.video_dataset import VideoDataset
from videossl.errors import UserError

CLIP = {"num_frames": 2, "frame_stride": 1, "crop_size": 32}


def _float_clip(frames):
    return frames.permute(3, 0, 1, 2).float() / 255  # (T, H, W, C) uint8 -> (C, T, H, W)


@pytest.fixture(scope="module")
def dataset_root(tiny_pool, tmp_path_factory):
    """train/ and test/ class folders of tiny videos, plus one broken video in each split."""
    root = tmp_path_factory.mktemp("msg_data")
    source = Path(tiny_pool).parent
    for split in ("train", "test"):
        shutil.copytree(source / split, root / split)
    first_class = sorted(p for p in (root / "train").iterdir() if p.is_dir())[0]
    (first_class / "zz_broken.mp4").write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    test_class = sorted(p for p in (root / "test").iterdir() if p.is_dir())[0]
    good = sorted(test_class.glob("*.mp4"))[0].read_bytes()
    (test_class / "zz_truncated.mp4").write_bytes(good[:600])
    return root


@pytest.fixture(scope="module")
def encoder(tmp_path_factory):
    from videossl.backbones import create_backbone, save_encoder

    path = tmp_path_factory.mktemp("msg_encoder") / "encoder.pt"
    torch.manual_seed(0)
    save_encoder(path, create_backbone("tiny_r3d"), "tiny_r3d", {}, clip=CLIP)
    return path


def good_videos(tiny_pool, n=2):
    return sorted(Path(tiny_pool).rglob("*.mp4"))[:n]


# ------------------------------------------------------------------ eval with data.crop_size=0


def test_eval_crop_size_0_names_the_setting_not_the_videos(encoder, dataset_root, capsys, tmp_path, cli_in_process):
    code, _, err = cli_in_process(capsys, ["eval", "knn", str(encoder), "data.format=folder", f"data.root={dataset_root}",
                                 "data.crop_size=0", "data.num_workers=0", "test.num_clips=1", "test.num_crops=1",
                                 f"out_dir={tmp_path}", "progress=false"])
    assert code == 2 and "data.crop_size" in err, err
    assert "unreadable" not in err and "skipping" not in err


def test_feature_extraction_checks_the_clip_settings_itself():
    """The data layer below the config checks: crop_size 0 is a setting error, not a broken file."""
    from videossl.eval.features import extract_features

    data = OmegaConf.create({"num_frames": 2, "frame_stride": 1, "crop_size": 0, "short_side": 0})
    with pytest.raises(UserError, match=r"^data.crop_size must be >= 1, got 0$"):
        extract_features(torch.nn.Identity(), DatasetIndex([], []), None, data)


def test_dataset_refuses_a_non_positive_short_side(tiny_pool):
    index = DatasetIndex([VideoEntry(str(p), 0) for p in good_videos(tiny_pool)], ["a"])
    views = S.ViewSpec(S.RandomClipSampler(2, 1), {"clip": _float_clip})
    with pytest.raises(DatasetError, match="short_side .* must be a positive number of pixels or None, got 0"):
        VideoDataset(index, views, decoder="pyav", short_side=0)


class RefusingDecoder:
    """Fails every file with the same setting-like error, as the decoder did for short_side=0."""

    def probe(self, path):
        raise ValueError("short_side must be positive, got 0")


def test_same_error_on_every_file_points_at_a_setting(tiny_pool):
    index = DatasetIndex([VideoEntry(str(p), 0) for p in good_videos(tiny_pool, 4)], ["a"])
    views = S.ViewSpec(S.RandomClipSampler(2, 1), {"clip": _float_clip})
    data = VideoDataset(index, views, decoder=RefusingDecoder(), max_retries=5)
    with pytest.raises(DatasetError) as caught:
        data[0]
    message = str(caught.value)
    assert "files in a row failed with the same error (short_side must be positive, got 0" in message
    assert "the cause is usually a setting" in message and "bad_file_log" not in message


def test_unreadable_in_a_row_hint_names_a_command_not_a_hidden_setting(tmp_path):
    broken = [tmp_path / "a.mp4", tmp_path / "b.mp4"]
    broken[0].write_bytes(b"not a video")  # fails to open ...
    # ... and b.mp4 is missing: two different errors, so the data is blamed
    index = DatasetIndex([VideoEntry(str(p), 0) for p in broken], ["a"])
    views = S.ViewSpec(S.RandomClipSampler(2, 1), {"clip": _float_clip})
    with pytest.raises(DatasetError) as caught:
        VideoDataset(index, views, decoder="pyav", max_retries=3)[0]
    message = str(caught.value)
    assert "4 unreadable files in a row" in message
    assert "`videossl data check <dataset folder>` lists every bad file" in message and "bad_file_log" not in message


# ------------------------------------------------------------------ data check


def test_data_check_timeout_0_means_no_limit(tiny_pool, capsys, cli_in_process):
    folder = good_videos(tiny_pool)[0].parent
    count = len(list(folder.glob("*.mp4")))
    code, out, _ = cli_in_process(capsys, ["data", "check", str(folder), "--timeout", "0", "--workers", "2"])
    assert code == 0 and f"{count} good, 0 bad" in out and "BAD" not in out, out


def _slow_check(path, decoder_name):
    import time

    time.sleep(0.3)  # a file that takes a moment to decode
    return None


def test_check_files_timeout_0_waits_for_a_slow_file(monkeypatch, tmp_path):
    import videossl.data.commands as commands

    monkeypatch.setattr(commands, "check_file", _slow_check)  # the forked workers inherit it
    paths = [str(tmp_path / f"{i}.mp4") for i in range(2)]
    assert commands.check_files(paths, timeout=0, workers=2, progress=False) == {}
    assert set(commands.check_files(paths, timeout=0.05, workers=2, progress=False)) == set(paths)


def test_data_check_negative_timeout_is_one_line(tiny_pool, capsys, cli_in_process):
    code, _, err = cli_in_process(capsys, ["data", "check", str(tiny_pool), "--timeout", "-1"])
    assert code == 2 and "--timeout must be >= 0 seconds (0: no limit), got -1" in err


def test_data_check_of_one_video_checks_that_file(tiny_pool, tmp_path, capsys, cli_in_process):
    video = good_videos(tiny_pool)[0]
    code, out, _ = cli_in_process(capsys, ["data", "check", str(video), "--workers", "1", "--decoder", "pyav"])
    assert code == 0 and "checked 1 file with pyav: 1 good, 0 bad" in out, out
    disguised = tmp_path / "clip.csv"  # a video under a CSV name is recognised by its content
    shutil.copyfile(video, disguised)
    code, out, _ = cli_in_process(capsys, ["data", "check", str(disguised), "--workers", "1", "--decoder", "pyav"])
    assert code == 0 and "1 good, 0 bad" in out, out


def test_a_binary_file_is_not_parsed_as_a_csv_manifest(tiny_pool, tmp_path, capsys, cli_in_process):
    blob = tmp_path / "weights.csv"
    blob.write_bytes(b"\x89\x00\x01binary\x00" * 20)
    code, _, err = cli_in_process(capsys, ["data", "check", str(blob)])
    assert code == 2 and f"{blob} is a binary file, not a CSV manifest (path,label[,start,end])" in err, err
    with pytest.raises(DatasetError, match=r"is a video file, not a CSV manifest"):
        read_dataset("csv", str(good_videos(tiny_pool)[0]))


# ------------------------------------------------------------------ data.format=bogus


def test_unknown_format_lists_the_valid_ones():
    from videossl.data.build import resolve_data_root
    from videossl.eval.features import read_split

    for call in (lambda: resolve_data_root(OmegaConf.create({"format": "bogus", "root": ""})),
                 lambda: read_split(OmegaConf.create({"format": "bogus", "root": ""}), "train", 1)):
        with pytest.raises(UserError) as caught:
            call()
        message = str(caught.value)
        assert message.startswith("data.format: unknown format 'bogus'; valid formats: ")
        assert "folder" in message and "synthetic" in message and "dataset folder" not in message
    with pytest.raises(UserError, match="unknown format 'ucf10'.*did you mean 'ucf101'"):
        resolve_data_root(OmegaConf.create({"format": "ucf10", "root": ""}))


def test_pretrain_with_an_unknown_format_exits_2(capsys, tmp_path, cli_in_process):
    code, _, err = cli_in_process(capsys, ["pretrain", "simclr_synthetic_tiny3d", "data.format=bogus",
                                 f"train.run_dir={tmp_path / 'run'}"])
    assert code == 2 and "bogus" in err and "synthetic" in err and "dataset folder" not in err, err


# ------------------------------------------------------------------ bad_files.csv


def test_bad_files_csv_collects_every_worker_and_the_summary_names_it(dataset_root, tmp_path):
    """Files skipped inside DataLoader workers reach the list (each worker appends to the dataset's log)."""
    from videossl.data.datasets import read_dataset

    index = read_dataset("folder", str(dataset_root), split="train")
    views = S.ViewSpec(S.RandomClipSampler(2, 1), {"clip": _float_clip})
    data = VideoDataset(index, views, decoder="pyav", seed=0, short_side=32)
    loader = torch.utils.data.DataLoader(data, batch_size=4, num_workers=2)
    loaded = torch.cat([batch["index"] for batch in loader])
    broken = [i for i, e in enumerate(index.entries) if e.path.endswith("zz_broken.mp4")]
    assert broken and not (loaded == broken[0]).any()  # it was replaced ...
    assert data.num_skipped == 0  # ... in a worker: the main process's counter never saw it
    summary = report_bad_files(data, tmp_path)
    path = tmp_path / "bad_files.csv"
    assert summary == f"1 file was skipped as unreadable; see {path}"
    rows = read_bad_files_csv(path)
    assert [r.path for r in rows] == [index.entries[broken[0]].path] and rows[0].count >= 1 and rows[0].reason
    assert path.read_text().splitlines()[0] == "path,reason,count"


def test_no_bad_files_no_csv(tiny_pool, tmp_path):
    index = DatasetIndex([VideoEntry(str(p), 0) for p in good_videos(tiny_pool)], ["a"])
    data = VideoDataset(index, S.ViewSpec(S.RandomClipSampler(2, 1), {"clip": _float_clip}), decoder="pyav")
    data[0]
    assert report_bad_files(data, tmp_path) is None and not (tmp_path / "bad_files.csv").exists()


def test_bad_files_merge_and_summary_wording(tmp_path):
    log = tmp_path / "log.tsv"
    log.write_text("a.mp4\tbroken\nb.mp4\ttimeout\na.mp4\tbroken\nhalf-written line without a tab")
    assert bad_files(str(log)) == [BadFile("a.mp4", "broken", 2), BadFile("b.mp4", "timeout", 1)]
    csv_path = tmp_path / "bad_files.csv"
    write_bad_files_csv(str(log), csv_path)
    write_bad_files_csv([BadFile("c.mp4", "gone", 1), BadFile("a.mp4", "broken", 1)], csv_path, merge=True)
    assert read_bad_files_csv(csv_path) == [BadFile("a.mp4", "broken", 3), BadFile("b.mp4", "timeout", 1),
                                            BadFile("c.mp4", "gone", 1)]
    assert bad_files_summary(3, "RUN/bad_files.csv") == "3 files were skipped as unreadable; see RUN/bad_files.csv"


def test_eval_writes_bad_files_csv_and_names_it(encoder, dataset_root, capsys, tmp_path, cli_in_process):
    out = tmp_path / "eval"
    code, _, err = cli_in_process(capsys, ["eval", "knn", str(encoder), "data.format=folder", f"data.root={dataset_root}",
                                 "data.num_workers=0", "test.num_clips=1", "test.num_crops=1", f"out_dir={out}",
                                 "progress=false"])
    assert code == 0, err
    rows = read_bad_files_csv(out / "bad_files.csv")
    assert sorted(Path(r.path).name for r in rows) == ["zz_broken.mp4", "zz_truncated.mp4"]
    assert f"2 files were skipped as unreadable; see {out / 'bad_files.csv'}" in err


def test_pretraining_run_writes_bad_files_csv(dataset_root, tmp_path, tiny_overrides):
    run = tmp_path / "run"
    args = [sys.executable, "-m", "videossl.cli", "pretrain", "simclr_synthetic_tiny3d",
            *tiny_overrides(dataset_root / "train", run, frames=2, steps=6), "train.plots=false"]
    done = subprocess.run(args, capture_output=True, text=True, timeout=600, env={**__import__("os").environ,
                                                                                 "OMP_NUM_THREADS": "1"})
    assert done.returncode == 0, done.stderr[-2000:]
    rows = read_bad_files_csv(run / "bad_files.csv")
    assert [Path(r.path).name for r in rows] == ["zz_broken.mp4"]
    assert f"1 file was skipped as unreadable; see {run / 'bad_files.csv'}" in done.stderr + done.stdout
