"""The readers on the REAL annotation files in ../shared/realdata: official counts and known quirks.

The videos themselves are absent: readers must not need them (``stats`` reports them missing).
"""
from pathlib import Path

import pytest

from videossl.data.datasets import read_dataset

REALDATA = Path(__file__).resolve().parents[2].parent / "shared" / "realdata"


def real(name: str) -> str:
    folder = REALDATA / name
    if not folder.is_dir():
        pytest.skip(f"real annotation files not found at {folder}")
    return str(folder)


def test_ucf101_official_counts_and_handstand_quirk():
    root = real("ucf101")
    train, test = read_dataset("ucf101", root, "train", 1), read_dataset("ucf101", root, "test", 1)
    assert len(train.class_names) == 101 and len(train.entries) == 9537 and len(test.entries) == 3783
    assert {e.label for e in train.entries} == set(range(101)) == {e.label for e in test.entries}
    hand = train.class_names.index("HandstandPushups")
    quirky = [e for e in test.entries if "v_HandStandPushups_" in e.path]
    assert quirky and all(e.label == hand for e in quirky)
    assert all(not e.path.endswith((" ", "\r")) for e in train.entries + test.entries)
    # the trainlist's own 1-based labels agree with ours
    lines = (REALDATA / "ucf101" / "trainlist01.txt").read_text().splitlines()
    assert [int(line.split()[1]) - 1 for line in lines] == [e.label for e in train.entries]
    for split_id, (n_train, n_test) in {2: (9586, 3734), 3: (9624, 3696)}.items():
        assert len(read_dataset("ucf101", root, "train", split_id).entries) == n_train
        assert len(read_dataset("ucf101", root, "test", split_id).entries) == n_test


@pytest.mark.parametrize("split_id", [1, 2, 3])
def test_hmdb51_official_counts_and_punctuation(split_id):
    root = real("hmdb51")
    train = read_dataset("hmdb51", root, "train", split_id)
    test = read_dataset("hmdb51", root, "test", split_id)
    unused = read_dataset("hmdb51", root, "unused", split_id)
    assert len(train.class_names) == 51 and len(train.entries) == 3570 and len(test.entries) == 1530
    assert len(train.entries) + len(test.entries) + len(unused.entries) == 6766
    assert not {e.path for e in train.entries} & {e.path for e in test.entries}
    names = "".join(Path(e.path).name for e in train.entries + test.entries + unused.entries)
    assert set("!#&();[]+@~") <= set(names)  # punctuation survives, trailing spaces do not
    assert all(e.path.endswith(".avi") and Path(e.path).parent.name == train.class_names[e.label]
               for e in train.entries)


def test_kinetics400_both_csv_flavours():
    root = real("kinetics400")
    activitynet = read_dataset("kinetics", root, "val", version=400)
    assert len(activitynet.entries) == 19906 and len(activitynet.class_names) == 400
    assert "air drumming" in activitynet.class_names and "petting animal (not cat)" in activitynet.class_names
    first = activitynet.entries[0]
    assert first.path.endswith("val/0wR5jVB-WPk_000417_000427.mp4")
    assert activitynet.class_names[first.label] == "abseiling"
    unlabeled = read_dataset("kinetics", root, "test", version=400)
    assert len(unlabeled.entries) == 38685 and {e.label for e in unlabeled.entries} == {-1}
    deepmind = read_dataset("kinetics", root, "val")  # validate.csv, the pruned DeepMind release
    assert len(deepmind.entries) == 18375 and deepmind.class_names == activitynet.class_names
    assert len(read_dataset("kinetics", root, "test").entries) == 36047


def test_kinetics_path_label_lists_read_as_csv():
    root = Path(real("kinetics400")) / "path_label"
    mm = read_dataset("csv", str(root / "mmaction2_style" / "kinetics400_val_list_videos.txt"))
    assert len(mm.entries) == 13733 and mm.entries[0].label == 375
    sf = read_dataset("csv", str(root / "slowfast_pytorchvideo_style" / "val.csv"))
    assert len(sf.entries) == 100 and sf.entries[0].path == "/raid/sipeng/actnet/data/kinetics400/val/0wR5jVB-WPk_000417_000427.mp4"


def test_ssv2_validation_and_test():
    root = real("ssv2")
    val = read_dataset("ssv2", root, "validation")
    assert len(val.class_names) == 174 and len(val.entries) == 24777
    assert val.entries[0].path.endswith("74225.webm")
    assert val.class_names[val.entries[0].label] == "Spinning something that quickly stops spinning"
    test = read_dataset("ssv2", root, "test")
    assert len(test.entries) == 27157 and {e.label for e in test.entries} == {-1}


def test_stats_reports_every_video_missing():
    from videossl.data.stats import dataset_stats

    stats = dataset_stats("hmdb51", real("hmdb51"), split_id=1)
    assert stats["splits"]["train"]["entries"] == 3570 and stats["splits"]["test"]["classes"] == 51
    assert len(stats["splits"]["test"]["missing"]) == 1530


def test_stats_command_prints_counts(capsys):
    import argparse

    from videossl.data.stats import add_arguments, run

    parser = argparse.ArgumentParser()
    add_arguments(parser)
    args = parser.parse_args(["--format", "ucf101", "--root", real("ucf101"), "--show-missing", "1"])
    assert run(args) == 0
    out = capsys.readouterr().out
    assert "split train: 9537 entries, 101 classes, 9537 missing videos" in out
    assert "split test: 3783 entries" in out and "... and 3782 more" in out
