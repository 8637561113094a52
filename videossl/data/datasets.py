"""Dataset indexes: one reader per annotation format.

A reader turns a dataset's official annotation files into a ``DatasetIndex``: a list of
``VideoEntry(path, label, start, end)`` and the class names. Readers never open or check video files
(``videossl data stats`` lists the missing ones), so they work on annotation files alone.

``read_dataset(format, root, split, split_id, **kw)`` is the one entry point. Annotation files are
looked up in ``annotations=`` when given, else in ``root``, ``root/annotations`` and ``root/splits``.
Paths in the index are ``video_root / <path in the annotation>`` (``video_root`` defaults to ``root``).
The map-style dataset that decodes these entries is ``videossl.data.video_dataset.VideoDataset``.
"""
from __future__ import annotations

import csv
import json
import logging
import os
import re
from pathlib import Path
from typing import Any, Callable, NamedTuple

from videossl.errors import UserError

logger = logging.getLogger("videossl.data")

VIDEO_EXTENSIONS = (".mp4", ".avi", ".webm", ".mkv", ".mov", ".m4v", ".flv", ".mpg", ".mpeg", ".ogv")
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".bmp", ".webp", ".gif", ".tif", ".tiff")
AUDIO_EXTENSIONS = (".wav", ".flac", ".mp3", ".ogg", ".m4a", ".opus", ".aac")


class DatasetError(UserError):
    """An annotation file is missing or malformed; the message names the file and the problem."""


class VideoEntry(NamedTuple):
    """One sample: a media file, its class (-1 = unlabeled) and an optional segment in seconds."""

    path: str
    label: int
    start: float = 0.0
    end: float | None = None


class DatasetIndex(NamedTuple):
    entries: list[VideoEntry]
    class_names: list[str]


# ----------------------------------------------------------------------------------------------------
# Helpers shared by the readers
# ----------------------------------------------------------------------------------------------------


def _search_dirs(root: Path, annotations: str | None) -> list[Path]:
    if annotations is not None:
        return [Path(annotations)]
    return [root, root / "annotations", root / "splits"]


def find_annotation(root: Path, annotations: str | None, names: list[str], what: str) -> Path:
    """The first of ``names`` (file names or glob patterns) found in the annotation folders."""
    for folder in _search_dirs(root, annotations):
        for name in names:
            hits = sorted(folder.glob(name)) if any(c in name for c in "*?[") else [folder / name]
            hits = [h for h in hits if h.is_file()]
            if hits:
                return hits[0]
    where = ", ".join(str(d) for d in _search_dirs(root, annotations))
    raise DatasetError(f"{what}: none of {names} found in {where} (pass annotations=<dir>)")


def _check_text_file(path: Path, expected: str) -> None:
    """``DatasetError`` when ``path`` is a media or other binary file where a text annotation file belongs."""
    suffix = path.suffix.lower()
    kind = ("a video file" if suffix in VIDEO_EXTENSIONS else "an image file" if suffix in IMAGE_EXTENSIONS
            else "an audio file" if suffix in AUDIO_EXTENSIONS else None)
    if kind is None:
        try:
            with open(path, "rb") as f:
                head = f.read(4096)
        except OSError:
            return  # read_lines reports it
        if b"\x00" not in head:
            return
        kind = "a video file" if head[4:8] == b"ftyp" else "a binary file"
    raise DatasetError(f"{path} is {kind}, not {expected}")


def read_lines(path: Path) -> list[str]:
    """Non-empty lines with CRLF and trailing blanks removed."""
    try:
        text = path.read_text(encoding="utf-8-sig", errors="replace")
    except OSError as err:
        raise DatasetError(f"{path}: cannot read ({err.strerror or err})") from None
    return [line.strip() for line in text.splitlines() if line.strip()]


def _media_files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    return sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in extensions)


class _VideoFiles:
    """Finds a video by the stem an annotation names, whatever its extension: Kinetics downloads come as
    ``.mp4``, ``.webm`` and ``.mkv``, SSv2 as ``.webm`` or converted ``.mp4``, UCF101 / HMDB51 as ``.avi`` or
    re-encoded copies. Each folder is listed once (no file is opened or stat'ed one by one). Kinetics stems also
    match without the zero padding (``<id>_7_17`` for ``<id>_000007_000017``). A stem not found keeps
    ``default`` (the documented name), so ``videossl data stats`` reports it missing under that name."""

    _SEGMENT = re.compile(r"^(.+)_(\d+)_(\d+)$")

    def __init__(self) -> None:
        self._folders: dict[Path, tuple[set[str], dict[str, str]]] = {}

    def _listing(self, folder: Path) -> tuple[set[str], dict[str, str]]:
        found = self._folders.get(folder)
        if found is None:
            rank = {ext: i for i, ext in enumerate(VIDEO_EXTENSIONS)}
            try:
                files = [e.name for e in os.scandir(folder) if Path(e.name).suffix.lower() in rank and e.is_file()]
            except OSError:  # no such folder (yet): every stem keeps its default name
                files = []
            stems: dict[str, str] = {}
            for name in sorted(files, key=lambda n: (rank[Path(n).suffix.lower()], n)):  # .mp4 first on a tie
                stem = Path(name).stem
                stems.setdefault(stem, name)
                segment = self._SEGMENT.match(stem)
                if segment:
                    stems.setdefault(f"{segment[1]}_{int(segment[2]):06d}_{int(segment[3]):06d}", name)
            found = self._folders[folder] = (set(files), stems)
        return found

    def find(self, folder: Path, stem: str, default: str) -> str:
        """``folder / default`` when that file exists, else ``folder / <a video file with this stem>``, else
        ``folder / default``."""
        files, stems = self._listing(folder)
        name = default if default in files else stems.get(stem, default)
        return str(folder / name)


def _documented_subfolder(root: Path, name: str) -> Path:
    """``root/name`` when it is a folder (the video folder of a dataset README's layout), else ``root``."""
    return root / name if (root / name).is_dir() else root


def _split_folder(root: Path, split: str) -> Path:
    """``root/<split>`` when that folder exists (``val`` also matches ``validate``/``validation``), else root."""
    for name in (split, *_SPLIT_ALIASES.get(split, ())):
        if (root / name).is_dir():
            return root / name
    return root


_SPLIT_ALIASES = {"val": ("validate", "validation", "valid"), "validate": ("val", "validation"),
                  "validation": ("val", "validate"), "test": ("testing",), "train": ("training",)}


def _check_split(split: str, allowed: tuple[str, ...], fmt: str) -> str:
    split = split.lower()
    for name in allowed:
        if split == name or split in _SPLIT_ALIASES.get(name, ()):
            return name
    raise DatasetError(f"format {fmt!r}: unknown split {split!r} (expected one of {list(allowed)})")


# ----------------------------------------------------------------------------------------------------
# Format readers
# ----------------------------------------------------------------------------------------------------


def read_folder(root: Path, split: str = "train", extensions: tuple[str, ...] = VIDEO_EXTENSIONS,
                **_: Any) -> DatasetIndex:
    """``root[/<split>]/<class>/<file>``; a flat folder of files is unlabeled (label -1)."""
    base = _split_folder(root, split)
    if not base.is_dir():
        raise DatasetError(f"{base}: not a folder")
    classes = sorted(d.name for d in base.iterdir() if d.is_dir() and _media_files(d, extensions))
    entries = [VideoEntry(str(p), -1) for p in _media_files(base, extensions)]
    for label, name in enumerate(classes):
        entries += [VideoEntry(str(p), label) for p in _media_files(base / name, extensions)]
    if not entries:
        raise DatasetError(f"{base}: no files with extensions {list(extensions)}")
    return DatasetIndex(entries, classes)


def read_csv(root: Path, split: str = "train", annotations: str | None = None, video_root: str | None = None,
             classes: str | None = None, **_: Any) -> DatasetIndex:
    """Rows ``path,label[,start,end]`` (a header row is optional; ``path label`` lists also work).

    ``root`` may be the CSV itself or a folder holding ``<split>.csv``/``<split>.txt``. The label is a
    class name or an integer. Relative paths are relative to ``video_root`` (default: the CSV's folder).
    Class names and order come from ``classes=`` or a ``classes.txt`` beside the CSV when present
    (one name per line), else sorted names / ``"0".."N"``.
    """
    file = root if root.is_file() else find_annotation(root, annotations, [f"{split}.csv", f"{split}.txt"], "csv")
    _check_text_file(file, "a CSV manifest (path,label[,start,end])")
    base = Path(video_root) if video_root else file.parent
    rows = []
    for n, line in enumerate(read_lines(file), 1):
        fields = next(csv.reader([line])) if "," in line else line.rsplit(maxsplit=1)
        fields = [f.strip() for f in fields]
        if n == 1 and len(fields) > 1 and fields[1].lower() == "label":
            continue  # header
        if len(fields) not in (2, 4):
            raise DatasetError(f"{file}:{n}: expected path,label[,start,end], got {line!r}")
        rows.append((n, fields))
    is_int = all(re.fullmatch(r"-?\d+", f[1]) for _, f in rows)
    names = [] if is_int else sorted({f[1] for _, f in rows})
    if is_int and rows:
        names = [str(i) for i in range(max(int(f[1]) for _, f in rows) + 1)]
    class_file = Path(classes) if classes else file.parent / "classes.txt"
    if class_file.is_file():  # the class order of write_manifest (or the user's own list)
        given = read_lines(class_file)
        unknown = set() if is_int else {f[1] for _, f in rows} - set(given)
        if unknown or (is_int and rows and max(int(f[1]) for _, f in rows) >= len(given)):
            raise DatasetError(f"{file}: labels {sorted(unknown)[:3] or 'out of range'} not in {class_file}")
        names = given
    lookup = {name: i for i, name in enumerate(names)}
    entries = []
    for n, f in rows:
        label = int(f[1]) if is_int else lookup[f[1]]
        try:
            start, end = (float(f[2]), float(f[3])) if len(f) == 4 else (0.0, None)
        except ValueError:
            raise DatasetError(f"{file}:{n}: start/end must be seconds, got {f[2]!r}, {f[3]!r}") from None
        entries.append(VideoEntry(str(base / f[0]), label, start, end))
    return DatasetIndex(entries, names)


def read_ucf101(root: Path, split: str = "train", split_id: int = 1, annotations: str | None = None,
                video_root: str | None = None, **_: Any) -> DatasetIndex:
    """UCF101 (Soomro et al., 2012): ``classInd.txt`` + ``trainlist0k.txt`` / ``testlist0k.txt``, k = 1..3.

    Class lookup is case-insensitive: the folder ``HandstandPushups`` holds ``v_HandStandPushups_*``. Videos are
    ``video_root/<Class>/<file>``; without ``video_root``, ``root/UCF-101`` when that folder exists (the README's
    layout, so ``root=data/ucf101`` works as the recipes say), else ``root``.
    """
    split = _check_split(split, ("train", "test"), "ucf101")
    if split_id not in (1, 2, 3):
        raise DatasetError(f"ucf101: split_id must be 1, 2 or 3, got {split_id}")
    extra = ["ucfTrainTestlist/classInd.txt"]
    class_file = find_annotation(root, annotations, ["classInd.txt", *extra], "ucf101 classes")
    names = []
    for n, line in enumerate(read_lines(class_file), 1):
        parts = line.split()
        if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) != len(names) + 1:
            raise DatasetError(f"{class_file}:{n}: expected '<index> <ClassName>' in order, got {line!r}")
        names.append(parts[1])
    lookup = {name.lower(): i for i, name in enumerate(names)}
    list_name = f"{split}list0{split_id}.txt"
    list_file = find_annotation(root, annotations, [list_name, f"ucfTrainTestlist/{list_name}"], "ucf101 split")
    base = Path(video_root) if video_root else _documented_subfolder(root, "UCF-101")
    entries, files = [], _VideoFiles()
    for n, line in enumerate(read_lines(list_file), 1):
        rel = line.split()[0]
        folder = rel.replace("\\", "/").split("/")[0].lower()
        if folder not in lookup:
            raise DatasetError(f"{list_file}:{n}: class folder {folder!r} is not in {class_file.name}")
        path = base / rel
        entries.append(VideoEntry(files.find(path.parent, path.stem, path.name), lookup[folder]))
    return DatasetIndex(entries, names)


def read_hmdb51(root: Path, split: str = "train", split_id: int = 1, annotations: str | None = None,
                video_root: str | None = None, **_: Any) -> DatasetIndex:
    """HMDB51 (Kuehne et al., 2011): 51 x ``<class>_test_split<k>.txt`` with ``<video>.avi <0|1|2>`` lines.

    1 = train, 2 = test, 0 = unused (``split="unused"``). Videos are ``video_root/<class>/<video>``; without
    ``video_root``, ``root/videos`` when that folder exists (the README's layout), else ``root``.
    """
    split = _check_split(split, ("train", "test", "unused"), "hmdb51")
    if split_id not in (1, 2, 3):
        raise DatasetError(f"hmdb51: split_id must be 1, 2 or 3, got {split_id}")
    wanted = {"train": "1", "test": "2", "unused": "0"}[split]
    pattern = f"*_test_split{split_id}.txt"
    first = find_annotation(root, annotations, [pattern, f"testTrainMulti_7030_splits/{pattern}"], "hmdb51 splits")
    files = sorted(first.parent.glob(pattern))
    names = [f.name[: -len(f"_test_split{split_id}.txt")] for f in files]
    base = Path(video_root) if video_root else _documented_subfolder(root, "videos")
    entries, videos = [], _VideoFiles()
    for label, (name, file) in enumerate(zip(names, files)):
        for n, line in enumerate(read_lines(file), 1):
            video, _, tag = line.rpartition(" ")
            if tag not in ("0", "1", "2") or not video:
                raise DatasetError(f"{file}:{n}: expected '<video>.avi <0|1|2>', got {line!r}")
            if tag == wanted:
                video = video.strip()
                entries.append(VideoEntry(videos.find(base / name, Path(video).stem, video), label))
    return DatasetIndex(entries, names)


_KINETICS_SPLITS = {"train": ("train",), "val": ("val", "validate"), "test": ("test",)}


def read_kinetics(root: Path, split: str = "train", annotations: str | None = None, video_root: str | None = None,
                  version: int | str | None = None, trimmed: bool = True, **_: Any) -> DatasetIndex:
    """Kinetics 400/600/700 CSVs: ActivityNet (quoted labels, ``is_cc``; test has no label column) or
    DeepMind (``label,youtube_id,time_start,time_end,split``).

    Trimmed videos (``trimmed=True``) are ``<id>_<start:06d>_<end:06d>.*`` under ``video_root/<split>/``
    or ``video_root/<split>/<label>/`` (both accepted: the label folder is used when it exists, with
    spaces or underscores). ``trimmed=False``: ``<id>.*`` with the segment as ``start``/``end``. Any video
    extension matches (``.mp4``, ``.webm``, ``.mkv``...; unpadded ``<id>_<start>_<end>`` too); a video not
    found is listed as ``.mp4``.
    With both ``validate.csv`` and ``kinetics-400_val.csv`` present, ``version=400`` picks the latter.
    """
    split = _check_split(split, tuple(_KINETICS_SPLITS), "kinetics")
    versions = [str(version)] if version else ["400", "600", "700", "700-2020"]
    plain = [f"{alias}.csv" for alias in _KINETICS_SPLITS[split]]
    named = [f"kinetics{sep}{v}_{alias}.csv" for v in versions for alias in _KINETICS_SPLITS[split] for sep in "-_"]
    # An explicit version prefers the versioned (ActivityNet) file name over the DeepMind tarball one.
    file = find_annotation(root, annotations, named + plain if version else plain + named, f"kinetics {split} csv")
    with open(file, newline="", encoding="utf-8-sig") as handle:
        rows = list(csv.DictReader(handle, skipinitialspace=True))
    if rows and not {"youtube_id", "time_start", "time_end"} <= set(rows[0]):
        raise DatasetError(f"{file}: expected columns youtube_id,time_start,time_end[,label], got {list(rows[0])}")
    labelled = bool(rows) and "label" in rows[0]
    class_names = sorted({r["label"].strip() for r in rows}) if labelled else []
    lookup = {name: i for i, name in enumerate(class_names)}
    base = Path(video_root) if video_root else root
    split_dir = next((base / a for a in (split, *_SPLIT_ALIASES.get(split, ())) if (base / a).is_dir()), base / split)
    label_dirs: dict[str, Path] = {}
    for name in class_names:
        hits = [split_dir / d for d in (name, name.replace(" ", "_")) if (split_dir / d).is_dir()]
        label_dirs[name] = hits[0] if hits else split_dir
    entries, files = [], _VideoFiles()
    for n, row in enumerate(rows, 2):
        try:
            start, end = float(row["time_start"]), float(row["time_end"])
        except (TypeError, ValueError):
            raise DatasetError(f"{file}:{n}: time_start/time_end must be numbers, got {row}") from None
        name = row["label"].strip() if labelled else None
        folder = label_dirs[name] if name is not None else split_dir
        stem = f"{row['youtube_id']}_{int(start):06d}_{int(end):06d}" if trimmed else row["youtube_id"]
        path = files.find(folder, stem, f"{stem}.mp4")
        if trimmed:
            entries.append(VideoEntry(path, lookup[name] if name is not None else -1))
        else:
            entries.append(VideoEntry(path, lookup[name] if name is not None else -1, start, end))
    return DatasetIndex(entries, class_names)


def read_ssv2(root: Path, split: str = "train", annotations: str | None = None, video_root: str | None = None,
              **_: Any) -> DatasetIndex:
    """Something-Something v2: ``something-something-v2-labels.json`` (template -> "index") and
    ``-train/-validation/-test.json`` lists; videos ``video_root/<id>.webm`` (or any other video extension);
    templates lose their [ ]."""
    split = _check_split(split, ("train", "validation", "test"), "ssv2")
    label_file = find_annotation(root, annotations, ["something-something-v2-labels.json", "labels.json"], "ssv2 labels")
    list_file = find_annotation(root, annotations, [f"something-something-v2-{split}.json", f"{split}.json"],
                                f"ssv2 {split}")
    labels, items = _read_json(label_file), _read_json(list_file)
    if not isinstance(labels, dict) or not isinstance(items, list):
        raise DatasetError(f"{label_file} / {list_file}: expected a label dict and a list of videos")
    class_names = sorted(labels, key=lambda k: int(labels[k]))
    base = Path(video_root) if video_root else root
    entries, files = [], _VideoFiles()
    for n, item in enumerate(items):
        if "id" not in item:
            raise DatasetError(f"{list_file}: item {n} has no 'id'")
        template = item.get("template")
        if template is None:
            label = -1
        else:
            key = template.replace("[", "").replace("]", "")
            if key not in labels:
                raise DatasetError(f"{list_file}: item {n} (id {item['id']}): template {key!r} not in {label_file.name}")
            label = int(labels[key])
        entries.append(VideoEntry(files.find(base, str(item["id"]), f"{item['id']}.webm"), label))
    return DatasetIndex(entries, class_names)


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except json.JSONDecodeError as err:
        raise DatasetError(f"{path}: invalid JSON at line {err.lineno} ({err.msg})") from None


def read_images(root: Path, split: str = "train", **kw: Any) -> DatasetIndex:
    """An image folder (``root[/<split>]/<class>/<image>`` or flat); each image is a T=1 clip."""
    return read_folder(root, split, extensions=IMAGE_EXTENSIONS)


def read_audio(root: Path, split: str = "train", **kw: Any) -> DatasetIndex:
    """An audio folder (``root[/<split>]/<class>/<file>`` or flat, unlabeled)."""
    return read_folder(root, split, extensions=AUDIO_EXTENSIONS)


def read_librispeech(root: Path, split: str = "train-clean-100", **_: Any) -> DatasetIndex:
    """LibriSpeech: ``root/<split>/<speaker>/<chapter>/<utterance>.flac``; label = speaker (sorted ids)."""
    base = root / split if (root / split).is_dir() else root
    files = sorted(base.glob("*/*/*.flac"))
    if not files:
        raise DatasetError(f"{base}: no <speaker>/<chapter>/*.flac files (is split {split!r} right?)")
    speakers = sorted({f.parent.parent.name for f in files}, key=lambda s: (len(s), s))
    lookup = {s: i for i, s in enumerate(speakers)}
    return DatasetIndex([VideoEntry(str(f), lookup[f.parent.parent.name]) for f in files], speakers)


def write_manifest(index: DatasetIndex, path: str | Path) -> Path:
    """Write ``index`` as a ``csv``-format manifest (``path,label,start,end`` with integer labels) and a
    ``classes.txt`` beside it, so ``read_dataset("csv", path)`` gives back the same index. Splits written
    to one folder share ``classes.txt``: write the labelled splits (same class list) before unlabeled ones."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "w", newline="", encoding="utf-8") as handle:
        writer = csv.writer(handle)
        writer.writerow(["path", "label", "start", "end"])
        for e in index.entries:  # a segment only when the entry has one (untrimmed Kinetics)
            writer.writerow([e.path, e.label, e.start, e.end] if e.end is not None else [e.path, e.label])
    classes = path.parent / "classes.txt"
    if index.class_names or not classes.exists():  # an unlabeled split keeps its siblings' class list
        classes.write_text("".join(f"{name}\n" for name in index.class_names), encoding="utf-8")
    return path


READERS: dict[str, Callable[..., DatasetIndex]] = {
    "folder": read_folder, "csv": read_csv, "ucf101": read_ucf101, "hmdb51": read_hmdb51,
    "kinetics": read_kinetics, "ssv2": read_ssv2, "images": read_images, "audio": read_audio,
    "librispeech": read_librispeech,
}


def read_dataset(format: str, root: str, split: str = "train", split_id: int = 1, **kw: Any) -> DatasetIndex:
    """Read a dataset's index. ``format``: one of ``READERS``; extra keywords go to the reader
    (``annotations``, ``video_root``, ``version``, ``trimmed``)."""
    if format not in READERS:
        raise DatasetError(f"unknown dataset format {format!r} (expected one of {sorted(READERS)})")
    path = Path(root).expanduser()
    if not path.exists():
        raise DatasetError(f"{root}: dataset root does not exist")
    return READERS[format](path, split=split, split_id=split_id, **kw)

