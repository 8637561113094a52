"""Audio-visual dataset readers: Kinetics-Sounds, AudioSet and ESC-50 (registered in ``datasets.READERS``).

- ``kinetics_sounds``: the Kinetics-400 layout (``read_kinetics``) restricted to the classes of
  ``KINETICS_SOUNDS_CLASSES`` (or a class list file, ``classes=<file>``), relabelled 0..K-1 in list order.
- ``audioset``: the segment CSVs (``balanced_train_segments.csv``, ``unbalanced_train_segments.csv``,
  ``eval_segments.csv``) and ``class_labels_indices.csv``. AudioSet is multi-label: an entry's ``label`` is its
  FIRST positive label (so single-label tools and ``data stats`` see something); ``read_audioset_multilabel``
  gives every positive label of every entry and ``multi_hot`` turns them into a ``(N, 527)`` 0/1 matrix.
- ``esc50``: ``meta/esc50.csv`` + ``audio/``; ``split_id`` (1..5) is the held-out fold: ``split=test`` is that
  fold, ``split=train`` the other four (ESC-50's 5-fold protocol, Piczak 2015).

Like every reader these never open a media file; AudioSet lists its split folder once to find how the clips
were named (see ``AUDIOSET_NAME_PATTERNS``). The how-to-get-it notes are in ``datasets/<name>/README.md``.
"""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from .datasets import (AUDIO_EXTENSIONS, READERS, VIDEO_EXTENSIONS, DatasetError, DatasetIndex, VideoEntry,
                       _check_split, find_annotation, read_kinetics, read_lines)

# Kinetics-Sounds as a Kinetics-400 class list: the 32 classes of facebookresearch/selavi (SeLaVi, Asano et al.,
# NeurIPS 2020) datasets/AVideoDataset.py ``sound_only_classes_kinetics`` (last changed in commit 39b677c5; HEAD
# 33d2b2d7), folder names with underscores written here with spaces as in the Kinetics CSVs. It is L3's list
# (Arandjelovic & Zisserman 2017, appendix A1: 34 names) mapped onto the released Kinetics-400 names: L3's
# "blowing out", "dribbling ball", "mowing the lawn by pushing lawnmower" and "stomping" are the Kinetics-400
# classes "blowing out candles", "dribbling basketball", "mowing lawn" and "stomping grapes"; L3's "typing",
# "patting" and "fingerpicking" have no Kinetics-400 class and SeLaVi adds "strumming guitar". Every name is
# checked against the real kinetics-400_val.csv in tests/data/test_av_datasets.py.
KINETICS_SOUNDS_CLASSES: tuple[str, ...] = (
    "blowing nose", "blowing out candles", "bowling", "chopping wood", "dribbling basketball", "laughing",
    "mowing lawn", "playing accordion", "playing bagpipes", "playing bass guitar", "playing clarinet",
    "playing drums", "playing guitar", "playing harmonica", "playing keyboard", "playing organ", "playing piano",
    "playing saxophone", "playing trombone", "playing trumpet", "playing violin", "playing xylophone",
    "ripping paper", "shoveling snow", "shuffling cards", "singing", "stomping grapes", "strumming guitar",
    "tap dancing", "tapping guitar", "tapping pen", "tickling",
)


def read_kinetics_sounds(root: Path, split: str = "train", classes: str | Sequence[str] | None = None,
                         **kw: Any) -> DatasetIndex:
    """Kinetics-Sounds: a Kinetics-400 layout (any ``read_kinetics`` CSV flavour and video layout) keeping only
    the Kinetics-Sounds classes, relabelled 0..K-1 in the order of the class list.

    ``classes``: ``None`` for ``KINETICS_SOUNDS_CLASSES`` (32), a file with one class per line, or a list (e.g.
    the 30 or 31-class variants of later papers). A class of the list absent from the annotation file is an
    error (a typo would otherwise silently shrink the dataset); an unlabeled CSV (ActivityNet test) is too.
    """
    wanted = _class_list(classes)
    full = read_kinetics(root, split=split, **kw)
    if not full.class_names:
        raise DatasetError(f"kinetics_sounds: the {split} annotation file has no labels, so the Kinetics-Sounds "
                           f"classes cannot be picked out (use split=val, or DeepMind's labelled test.csv)")
    missing = [name for name in wanted if name not in full.class_names]
    if missing:
        raise DatasetError(f"kinetics_sounds: classes {missing[:5]} are not in the {split} annotation file "
                           f"({len(full.class_names)} classes; Kinetics-400 names, with spaces)")
    relabel = {full.class_names.index(name): i for i, name in enumerate(wanted)}
    entries = [e._replace(label=relabel[e.label]) for e in full.entries if e.label in relabel]
    return DatasetIndex(entries, list(wanted))


def _class_list(classes: str | Sequence[str] | None) -> tuple[str, ...]:
    if classes is None:
        return KINETICS_SOUNDS_CLASSES
    if isinstance(classes, str):
        path = Path(classes).expanduser()
        if not path.is_file():
            raise DatasetError(f"kinetics_sounds: class list {classes} is not a file (one class name per line)")
        names = tuple(read_lines(path))
    else:
        names = tuple(str(c).strip() for c in classes)
    if not names or len(set(names)) != len(names):
        raise DatasetError(f"kinetics_sounds: the class list is empty or has duplicates ({len(names)} names)")
    return names


# ----------------------------------------------------------------------------------------------------
# AudioSet
# ----------------------------------------------------------------------------------------------------

AUDIOSET_SPLITS = {"balanced_train": "balanced_train_segments.csv",
                   "unbalanced_train": "unbalanced_train_segments.csv", "eval": "eval_segments.csv"}
_AUDIOSET_ALIASES = {"train": "balanced_train", "val": "eval", "validation": "eval", "test": "eval",
                     "unbalanced": "unbalanced_train", "balanced": "balanced_train"}
# How downloaders name a segment (first match wins; ``{s}``/``{e}`` are the CSV's seconds): the documented
# ``<YTID>_<start>_<end>`` with integer seconds, the same with the CSV's text ("30.000"), Kinetics-style zero
# padding, milliseconds, and the bare ``Y<YTID>`` / ``<YTID>`` of several public copies.
AUDIOSET_NAME_PATTERNS = ("{id}_{s:d}_{e:d}", "{id}_{st}_{et}", "{id}_{s:06d}_{e:06d}", "{id}_{ms:d}_{me:d}",
                          "Y{id}", "{id}")


def _audioset_split(split: str) -> str:
    name = _AUDIOSET_ALIASES.get(split.lower(), split.lower())
    if name not in AUDIOSET_SPLITS:
        raise DatasetError(f"format 'audioset': unknown split {split!r} (expected one of {list(AUDIOSET_SPLITS)}; "
                           f"aliases {sorted(_AUDIOSET_ALIASES)})")
    return name


def read_audioset_classes(path: Path) -> tuple[list[str], dict[str, int]]:
    """``class_labels_indices.csv`` (``index,mid,display_name``) -> (display names by index, mid -> index)."""
    with open(path, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"index", "mid", "display_name"} <= set(rows[0]):
        raise DatasetError(f"{path}: expected columns index,mid,display_name")
    try:
        order = sorted(rows, key=lambda r: int(r["index"]))
    except ValueError:
        raise DatasetError(f"{path}: the index column must hold integers") from None
    if [int(r["index"]) for r in order] != list(range(len(order))):
        raise DatasetError(f"{path}: indices must run 0..{len(order) - 1} without gaps")
    return [r["display_name"] for r in order], {r["mid"]: int(r["index"]) for r in order}


def read_audioset_multilabel(root: Path, split: str = "balanced_train", annotations: str | None = None,
                             video_root: str | None = None, extension: str = ".mp4",
                             **_: Any) -> tuple[DatasetIndex, list[tuple[int, ...]]]:
    """(index, positive labels of every entry). Rows ``YTID, start, end, "mid,mid,..."`` after ``#`` comments.

    Clips are looked up in ``video_root`` (default root) ``/<split>/`` (else ``video_root`` itself) under the
    names of ``AUDIOSET_NAME_PATTERNS`` with any video or audio extension; a segment not found there gets the
    documented name ``<YTID>_<start>_<end><extension>`` (``videossl data stats`` reports it missing). A label
    mid absent from ``class_labels_indices.csv`` is an error.
    """
    split = _audioset_split(split)
    classes_file = find_annotation(root, annotations, ["class_labels_indices.csv"], "audioset classes")
    names, lookup = read_audioset_classes(classes_file)
    segments = find_annotation(root, annotations, [AUDIOSET_SPLITS[split]], f"audioset {split} segments")
    base = Path(video_root) if video_root else root
    folder = base / split if (base / split).is_dir() else base
    on_disk = {p.stem: p.name for p in folder.iterdir()
               if p.suffix.lower() in VIDEO_EXTENSIONS + AUDIO_EXTENSIONS} if folder.is_dir() else {}
    entries, labels = [], []
    with open(segments, newline="", encoding="utf-8-sig") as handle:
        for n, row in enumerate(csv.reader(handle, skipinitialspace=True), 1):
            if not row or row[0].lstrip().startswith("#"):
                continue
            if len(row) != 4:
                raise DatasetError(f"{segments}:{n}: expected YTID, start_seconds, end_seconds, \"labels\", got {row}")
            ytid, start_text, end_text, mids = (f.strip() for f in row)
            try:
                start, end = float(start_text), float(end_text)
            except ValueError:
                raise DatasetError(f"{segments}:{n}: start/end must be seconds, got {start_text!r}, {end_text!r}") from None
            unknown = [m for m in mids.split(",") if m.strip() not in lookup]
            if unknown or not mids:
                raise DatasetError(f"{segments}:{n}: labels {unknown or [mids]} not in {classes_file.name}")
            positive = tuple(lookup[m.strip()] for m in mids.split(","))
            name = _find_clip(on_disk, ytid, start, end, start_text, end_text) or f"{ytid}_{int(start)}_{int(end)}{extension}"
            entries.append(VideoEntry(str(folder / name), positive[0]))
            labels.append(positive)
    return DatasetIndex(entries, names), labels


def _find_clip(on_disk: dict[str, str], ytid: str, start: float, end: float, start_text: str, end_text: str) -> str | None:
    values = {"id": ytid, "s": int(start), "e": int(end), "st": start_text, "et": end_text,
              "ms": int(round(start * 1000)), "me": int(round(end * 1000))}
    for pattern in AUDIOSET_NAME_PATTERNS:
        stem = pattern.format(**values)
        if stem in on_disk:
            return on_disk[stem]
    return None


def read_audioset(root: Path, split: str = "balanced_train", **kw: Any) -> DatasetIndex:
    """AudioSet (Gemmeke et al. 2017) segment CSVs; multi-label, so ``label`` is each segment's first positive
    label (``read_audioset_multilabel`` gives all of them)."""
    return read_audioset_multilabel(root, split, **kw)[0]


def multi_hot(labels: Sequence[Sequence[int]], num_classes: int) -> np.ndarray:
    """``[(3, 17), (0,)]`` -> ``(N, num_classes)`` float32 0/1 targets (AudioSet's mAP protocol)."""
    out = np.zeros((len(labels), num_classes), dtype=np.float32)
    for i, positive in enumerate(labels):
        out[i, list(positive)] = 1.0
    return out


# ----------------------------------------------------------------------------------------------------
# ESC-50
# ----------------------------------------------------------------------------------------------------


def read_esc50_folds(root: Path, test_fold: int) -> tuple[DatasetIndex, DatasetIndex]:
    """ESC-50 (Piczak 2015): ``meta/esc50.csv`` (columns filename, fold, target, category, esc10, src_file, take; e.g.
    ``1-100032-A-0.wav,1,0,dog,True,100032,A``) and ``audio/<filename>``. Returns (train index, test index): fold
    ``test_fold`` is the test set, the other folds the training set.

    Classes are the categories in ``target`` order and a clip's label is its target's position among the targets
    the CSV lists: the full set's targets 0..49 are their own labels, and a subset (ESC-10's ten targets, or a copy
    with classes removed) still gets labels 0..K-1 that index ``class_names``."""
    meta = root / "meta" / "esc50.csv"
    if not meta.is_file():
        raise DatasetError(f"esc50: {meta} not found (expected the ESC-50 layout: meta/esc50.csv and audio/)")
    with open(meta, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows or not {"filename", "fold", "target", "category"} <= set(rows[0]):
        raise DatasetError(f"{meta}: expected columns filename,fold,target,category")
    names: dict[int, str] = {}
    for r in rows:
        target, category = int(r["target"]), r["category"]
        if names.setdefault(target, category) != category:
            raise DatasetError(f"{meta}: target {target} names two categories ({names[target]!r}, {category!r})")
    label = {target: position for position, target in enumerate(sorted(names))}
    classes = [names[target] for target in sorted(names)]
    if not 1 <= test_fold <= max(int(r["fold"]) for r in rows):
        raise DatasetError(f"esc50: data.test_fold={test_fold} is not one of the folds in {meta}")
    train, test = [], []
    for r in rows:
        entry = VideoEntry(str(root / "audio" / r["filename"]), label[int(r["target"])])
        (test if int(r["fold"]) == test_fold else train).append(entry)
    return DatasetIndex(train, classes), DatasetIndex(test, classes)


def read_esc50(root: Path, split: str = "train", split_id: int = 1, test_fold: int | None = None,
               **_: Any) -> DatasetIndex:
    """ESC-50 (Piczak 2015): ``meta/esc50.csv`` + ``audio/``; fold ``split_id`` (1..5) is held out: ``test`` is
    that fold, ``train`` the other four."""
    split = _check_split(split, ("train", "test"), "esc50")
    train, test = read_esc50_folds(root, int(test_fold if test_fold is not None else split_id))
    return train if split == "train" else test


AV_READERS: dict[str, Callable[..., DatasetIndex]] = {
    "kinetics_sounds": read_kinetics_sounds, "audioset": read_audioset, "esc50": read_esc50,
}
READERS.update(AV_READERS)  # videossl/data/__init__.py imports this module, so read_dataset knows these formats
