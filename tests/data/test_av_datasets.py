"""Audio-visual readers: Kinetics-Sounds (on hand-written CSVs and on the REAL Kinetics-400 annotation files),
AudioSet segment CSVs (multi-label, clip naming) and ESC-50 folds; tiny real mp4 / wav files written here."""
from __future__ import annotations

import csv
import wave
from pathlib import Path

import numpy as np
import pytest

from videossl.data.av_datasets import (KINETICS_SOUNDS_CLASSES, multi_hot, read_audioset_multilabel,
                                       read_esc50_folds)
from videossl.data.datasets import READERS, DatasetError, read_dataset

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"


def _write_wav(path: Path, seconds: float = 0.5, rate: int = 16000, freq: float = 440.0) -> Path:
    t = np.arange(int(seconds * rate)) / rate
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((0.3 * np.sin(2 * np.pi * freq * t) * 32767).astype(np.int16).tobytes())
    return path


def _write_mp4(path: Path) -> Path:
    from videossl.data.synthetic import write_video

    frames = np.random.default_rng(0).integers(0, 255, (8, 32, 32, 3), dtype=np.uint8)
    t = np.arange(8000) / 16000
    return write_video(path, frames, fps=16, audio=0.3 * np.sin(2 * np.pi * 440 * t))


def test_the_readers_are_registered():
    assert {"kinetics_sounds", "audioset", "esc50"} <= set(READERS)
    assert len(KINETICS_SOUNDS_CLASSES) == 32 == len(set(KINETICS_SOUNDS_CLASSES))


# ----------------------------------------------------------------------------------------------------
# Kinetics-Sounds
# ----------------------------------------------------------------------------------------------------


@pytest.fixture
def kinetics_root(tmp_path):
    """ActivityNet-style val CSV: every Kinetics-Sounds class once, two other classes, a real mp4 in a label folder."""
    rows = ["label,youtube_id,time_start,time_end,split,is_cc"]
    for k, name in enumerate(KINETICS_SOUNDS_CLASSES + ("abseiling", "zumba")):
        rows.append(f'"{name}",id{k:03d},{k},{k + 10},val,0')
    (tmp_path / "kinetics-400_val.csv").write_text("\n".join(rows) + "\n")
    folder = tmp_path / "val" / "playing_bagpipes"
    folder.mkdir(parents=True)
    k = KINETICS_SOUNDS_CLASSES.index("playing bagpipes")
    _write_mp4(folder / f"id{k:03d}_{k:06d}_{k + 10:06d}.mp4")
    return tmp_path


def test_kinetics_sounds_keeps_its_classes_in_list_order(kinetics_root):
    index = read_dataset("kinetics_sounds", str(kinetics_root), "val", version=400)
    assert index.class_names == list(KINETICS_SOUNDS_CLASSES)
    assert len(index.entries) == 32 and sorted(e.label for e in index.entries) == list(range(32))
    assert not any("abseiling" in e.path or "id032" in e.path for e in index.entries)
    bagpipes = KINETICS_SOUNDS_CLASSES.index("playing bagpipes")
    entry = next(e for e in index.entries if e.label == bagpipes)
    assert Path(entry.path).is_file() and entry.path.endswith(f"val/playing_bagpipes/id{bagpipes:03d}_"
                                                              f"{bagpipes:06d}_{bagpipes + 10:06d}.mp4")


def test_kinetics_sounds_custom_list_and_errors(kinetics_root, tmp_path):
    listed = tmp_path / "ks.txt"
    listed.write_text("playing organ\nbowling\n")
    index = read_dataset("kinetics_sounds", str(kinetics_root), "val", classes=str(listed))
    assert index.class_names == ["playing organ", "bowling"] and [e.label for e in index.entries] == [1, 0]
    with pytest.raises(DatasetError, match="not in the val annotation file"):
        read_dataset("kinetics_sounds", str(kinetics_root), "val", classes=["playing bagpipe"])  # typo
    (kinetics_root / "kinetics-400_test.csv").write_text("youtube_id,time_start,time_end,split\nabc,0,10,test\n")
    with pytest.raises(DatasetError, match="no labels"):
        read_dataset("kinetics_sounds", str(kinetics_root), "test")


def test_kinetics_sounds_on_the_real_kinetics400_annotations():
    root = REALDATA / "kinetics400"
    if not root.is_dir():
        pytest.skip(f"real annotation files not found at {root}")
    with open(root / "kinetics-400_val.csv", newline="") as handle:
        real_classes = {row["label"] for row in csv.DictReader(handle)}
    assert len(real_classes) == 400 and set(KINETICS_SOUNDS_CLASSES) <= real_classes  # every name exists
    for split, version, count in (("val", 400, 1594), ("val", None, 1487), ("test", None, 2920)):
        index = read_dataset("kinetics_sounds", str(root), split, version=version)
        counts = np.bincount([e.label for e in index.entries], minlength=32)
        assert len(index.entries) == count and len(index.class_names) == 32 and counts.min() >= 40, (split, version)


# ----------------------------------------------------------------------------------------------------
# AudioSet
# ----------------------------------------------------------------------------------------------------


@pytest.fixture
def audioset_root(tmp_path):
    (tmp_path / "class_labels_indices.csv").write_text(
        'index,mid,display_name\n0,/m/09x0r,"Speech"\n1,/m/0ytgt,"Child speech, kid speaking"\n'
        '2,/m/04rlf,"Music"\n')
    header = "# Segments csv created Sun Mar  5 10:54:31 2017\n# num_ytids=3, num_segs=3, num_unique_labels=3\n" \
             "# YTID, start_seconds, end_seconds, positive_labels\n"
    (tmp_path / "eval_segments.csv").write_text(
        header + '--4gqARaEJE, 0.000, 10.000, "/m/04rlf,/m/09x0r"\n-0RWZT-miFs, 420.000, 430.000, "/m/0ytgt"\n'
                 'a_b-c, 30.000, 40.000, "/m/09x0r"\n')
    (tmp_path / "balanced_train_segments.csv").write_text(header + 'x1, 0.000, 10.000, "/m/bogus"\n')
    folder = tmp_path / "eval"
    folder.mkdir()
    _write_mp4(folder / "--4gqARaEJE_0_10.mp4")  # the documented <YTID>_<start>_<end>
    _write_wav(folder / "Ya_b-c.wav")  # a bare Y<YTID> copy
    return tmp_path


def test_audioset_multilabel_names_and_clip_lookup(audioset_root):
    index, labels = read_audioset_multilabel(audioset_root, "test")  # test/val/eval all mean eval_segments.csv
    assert index.class_names == ["Speech", "Child speech, kid speaking", "Music"]
    assert labels == [(2, 0), (1,), (0,)]
    assert [e.label for e in index.entries] == [2, 1, 0]  # the first positive label
    paths = [Path(e.path) for e in index.entries]
    assert paths[0].name == "--4gqARaEJE_0_10.mp4" and paths[0].is_file()
    assert paths[1].name == "-0RWZT-miFs_420_430.mp4" and not paths[1].exists()  # documented name, missing
    assert paths[2].name == "Ya_b-c.wav" and paths[2].is_file()
    assert read_dataset("audioset", str(audioset_root), "eval").entries == index.entries
    assert multi_hot(labels, 3).tolist() == [[1, 0, 1], [0, 1, 0], [1, 0, 0]]


def test_audioset_errors(audioset_root):
    with pytest.raises(DatasetError, match="not in class_labels_indices.csv"):
        read_dataset("audioset", str(audioset_root), "train")  # balanced_train has an unknown mid
    with pytest.raises(DatasetError, match="unknown split"):
        read_dataset("audioset", str(audioset_root), "holdout")
    with pytest.raises(DatasetError, match="unbalanced_train"):
        read_dataset("audioset", str(audioset_root), "unbalanced_train")  # its CSV is absent


def test_audioset_clips_decode(audioset_root):
    from videossl.data.decode import audio_with_pyav

    index = read_dataset("audioset", str(audioset_root), "eval")
    for entry in (index.entries[0], index.entries[2]):
        wave_ = audio_with_pyav(entry.path, 0.0, 0.25, 16000)
        assert wave_.shape == (1, 4000) and float(wave_.abs().max()) > 0.1


# ----------------------------------------------------------------------------------------------------
# ESC-50
# ----------------------------------------------------------------------------------------------------


def test_esc50_reader_folds(tmp_path):
    (tmp_path / "audio").mkdir()
    (tmp_path / "meta").mkdir()
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, name in enumerate(("dog", "rain")):
            filename = f"{fold}-{target}-A-{target}.wav"
            _write_wav(tmp_path / "audio" / filename)
            rows.append(f"{filename},{fold},{target},{name},False,x,A")
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    test = read_dataset("esc50", str(tmp_path), "test", split_id=3)
    train = read_dataset("esc50", str(tmp_path), "train", split_id=3)
    assert test.class_names == ["dog", "rain"] and len(test.entries) == 2 and len(train.entries) == 8
    assert all(Path(e.path).name.startswith("3-") for e in test.entries)
    assert all(Path(e.path).is_file() for e in train.entries)
    assert read_esc50_folds(tmp_path, 3) == (train, test)
    with pytest.raises(DatasetError, match="test_fold"):
        read_dataset("esc50", str(tmp_path), "test", split_id=6)


def test_esc50_labels_index_the_class_list_on_a_subset(tmp_path):
    """ESC-50's meta rows are ``1-100032-A-0.wav,1,0,dog,True,100032,A`` (target = class number 0..49). A subset
    (ESC-10's targets 0, 1, 10, 11, 12, 20, 21, 38, 40, 41 here in part) must get labels 0..K-1 that index
    class_names, not the raw targets (which would point past the end of the class list)."""
    (tmp_path / "audio").mkdir()
    (tmp_path / "meta").mkdir()
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    subset = {41: "chainsaw", 0: "dog", 10: "rain", 38: "clock_tick"}
    for fold in (1, 2):
        for target, name in subset.items():
            filename = f"{fold}-{100 + target}-A-{target}.wav"
            (tmp_path / "audio" / filename).write_bytes(b"")
            rows.append(f"{filename},{fold},{target},{name},True,{100 + target},A")
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    train, test = read_esc50_folds(tmp_path, 2)
    assert train.class_names == ["dog", "rain", "clock_tick", "chainsaw"]  # in target order
    for index in (train, test):
        assert len(index.entries) == 4
        for entry in index.entries:
            target = int(Path(entry.path).stem.rsplit("-", 1)[1])
            assert index.class_names[entry.label] == subset[target]
    (tmp_path / "meta" / "esc50.csv").write_text("\n".join(rows + ["x.wav,1,0,cat,False,1,A"]) + "\n")
    with pytest.raises(DatasetError, match="target 0 names two categories"):
        read_esc50_folds(tmp_path, 1)


# ----------------------------------------------------------------------------------------------------
# prepare.py scripts: manifests that read back with --format csv
# ----------------------------------------------------------------------------------------------------


def _prepare(name: str):
    import importlib.util

    path = Path(__file__).resolve().parents[2] / "datasets" / name / "prepare.py"
    spec = importlib.util.spec_from_file_location(f"prepare_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.main


def test_prepare_scripts_write_manifests_that_read_back(kinetics_root, audioset_root, tmp_path, capsys):
    out = tmp_path / "ks"
    assert _prepare("kinetics_sounds")(["--root", str(kinetics_root), "--version", "400", "--out", str(out)]) == 0
    back = read_dataset("csv", str(out / "val.csv"))
    assert back.class_names == list(KINETICS_SOUNDS_CLASSES) and len(back.entries) == 32
    assert "31 missing" in capsys.readouterr().out  # the one mp4 written is found

    out = tmp_path / "as"
    assert _prepare("audioset")(["--root", str(audioset_root), "--splits", "eval,balanced_train", "--out", str(out)]) == 0
    printed = capsys.readouterr().out
    assert "3 segments, 1.33 labels each, 1 missing" in printed and "skipping balanced_train" in printed
    with open(out / "eval_labels.csv", newline="") as handle:
        assert [row["labels"] for row in csv.DictReader(handle)] == ["2 0", "1", "0"]
    assert [e.label for e in read_dataset("csv", str(out / "eval.csv")).entries] == [2, 1, 0]

    assert _prepare("esc50")(["--root", str(tmp_path / "nowhere"), "--out", str(tmp_path / "esc")]) == 2
