"""The miniature layouts are what the dataset READMEs describe: the README's own ``videossl data stats`` and
``prepare.py`` commands run on them, the readers list every written file, and the only files they miss are the
ones the layout leaves out on purpose."""
from __future__ import annotations

import re
import runpy
import shlex
from pathlib import Path

import pytest

from videossl.data.datasets import AUDIO_EXTENSIONS, VIDEO_EXTENSIONS, read_dataset

from .rehearse import ROOT, videossl

# README -> its layout folders (``data/<folder>`` in its commands); images/ has no rehearsal layout (no real-data
# recipe reads an image folder)
READMES = ("audioset", "esc50", "hmdb51", "kinetics", "kinetics_sounds", "librispeech", "ssv2", "ucf101")

# (layout, format, root below the layout, annotations below it or None, [(split, split_id), ...])
UCF_SPLITS = [(split, k) for k in (1, 2, 3) for split in ("train", "test")]
HMDB_SPLITS = [(split, k) for k in (1, 2, 3) for split in ("train", "test", "unused")]
READERS = [
    ("kinetics400", "kinetics", ".", None, [("train", 1), ("val", 1), ("test", 1)]),
    ("kinetics400", "kinetics_sounds", ".", None, [("train", 1), ("val", 1)]),
    ("ucf101", "ucf101", ".", None, UCF_SPLITS),  # the recipes' data.root=/data/ucf101
    ("ucf101", "ucf101", "UCF-101", "ucfTrainTestlist", UCF_SPLITS),  # the README's command
    ("hmdb51", "hmdb51", ".", None, HMDB_SPLITS),  # the recipes' data.root=/data/hmdb51
    ("hmdb51", "hmdb51", "videos", "testTrainMulti_7030_splits", HMDB_SPLITS),  # the README's command
    ("ssv2", "ssv2", "videos", "labels", [("train", 1), ("validation", 1), ("test", 1)]),
    ("audioset", "audioset", ".", None, [("balanced_train", 1), ("unbalanced_train", 1), ("eval", 1)]),
    ("ESC-50", "esc50", ".", None, [("train", 1), ("test", 1)]),
    ("LibriSpeech", "librispeech", ".", None, [("train-clean-100", 1)]),
    ("speech", "audio", ".", None, [("train", 1)]),
]


def readme_commands(readme: str) -> list[str]:
    """The ``videossl data stats`` and ``python datasets/.../prepare.py`` lines of a README's "Use it" block."""
    text = (ROOT / "datasets" / readme / "README.md").read_text()
    block = text.split("## Use it", 1)[1].split("```")[1]
    return [line.split("  #")[0].strip() for line in block.splitlines()
            if line.startswith(("videossl data stats", "python datasets/"))]


def on_layouts(command: str, base: Path, manifests: Path) -> list[str]:
    words = shlex.split(command)
    return [re.sub(r"^data/", f"{base}/", re.sub(r"^manifests/", f"{manifests}/", word)) for word in words]


@pytest.mark.parametrize("readme", READMES)
def test_readme_commands_run_on_the_layout(readme, layouts, tmp_path):
    commands = readme_commands(readme)
    assert len(commands) == 2, commands
    folders = {m for c in commands for m in re.findall(r"\bdata/([^/ ]+)", c)}
    missing, listed_layouts = set(), []
    for folder in folders:
        layout = layouts.get(folder)
        missing |= layout.missing
        listed_layouts.append(layout)
    for command in commands:
        argv = on_layouts(command, layouts.base, tmp_path / "manifests")
        if argv[0] == "videossl":
            result = videossl(argv[1:])
            assert result.code == 0, result.explain(argv[1:])
            reported = {line.split("]: ", 1)[1] for line in result.stdout.splitlines() if line.startswith("missing [")}
            assert reported <= missing, reported - missing
        else:
            script = ROOT / argv[1]
            main = runpy.run_path(str(script), run_name="rehearsal")["main"]
            assert main(argv[2:]) == 0, f"{command} failed"
    written = sorted((tmp_path / "manifests").rglob("*.csv"))
    assert written, "prepare.py wrote no manifest"
    for manifest in written:
        if manifest.name.endswith("_labels.csv"):  # AudioSet's multi-label side file: path,labels
            continue
        index = read_dataset("csv", str(manifest))
        absent = {e.path for e in index.entries if not Path(e.path).is_file()}
        assert absent <= missing, (manifest.name, absent - missing)


@pytest.mark.parametrize("case", READERS, ids=lambda c: f"{c[0]}-{c[1]}-{c[2]}")
def test_readers_list_every_file_and_miss_only_the_deliberate_ones(case, layouts):
    folder, fmt, root, annotations, splits = case
    layout = layouts.get(folder)
    kwargs = {"annotations": str(layout.root / annotations)} if annotations else {}
    seen: set[str] = set()
    for split, split_id in splits:
        index = read_dataset(fmt, str(layout.root / root), split, split_id, **kwargs)
        assert index.entries, (fmt, split)
        paths = {e.path for e in index.entries}
        assert {p for p in paths if not Path(p).is_file()} == layout.missing & paths, (fmt, split)
        assert all(0 <= e.label < len(index.class_names) for e in index.entries if e.label != -1)
        seen |= paths
    if fmt == "kinetics_sounds":  # a class subset of the Kinetics layout
        return
    media = {str(p) for p in layout.root.rglob("*") if p.suffix.lower() in VIDEO_EXTENSIONS + AUDIO_EXTENSIONS}
    assert media - seen == set(), f"files the annotations do not name: {sorted(media - seen)[:3]}"
    assert layout.missing | layout.broken <= seen


def test_layouts_keep_the_real_quirks(layouts):
    """The subsets keep what makes the real files awkward: CRLF, trailing spaces, punctuation, quoted labels."""
    ucf = layouts.get("ucf101").root / "ucfTrainTestlist"
    assert (ucf / "trainlist01.txt").read_bytes().endswith(b"\r\n")
    assert b"v_HandStandPushups_" in (ucf / "testlist01.txt").read_bytes()
    hmdb = layouts.get("hmdb51").root / "testTrainMulti_7030_splits"
    lines = [line for f in hmdb.glob("*_split1.txt") for line in f.read_text().splitlines()]
    assert lines and all(line.endswith(" ") for line in lines)
    assert set("".join(lines)) & set("[]!&();#+@~")
    kinetics = layouts.get("kinetics400").root
    assert "petting animal (not cat)" in (kinetics / "validate.csv").read_text()
    assert {p.suffix for p in (kinetics / "train").iterdir()} >= {".mp4", ".mkv", ".webm"}
    ssv2 = layouts.get("ssv2").root / "labels"
    assert (ssv2 / "something-something-v2-validation.json").read_bytes().endswith(b"]\r\n")
    audioset = layouts.get("audioset").root
    assert (audioset / "eval_segments.csv").read_text().startswith("# Segments csv")
