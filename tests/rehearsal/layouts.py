"""Miniature copies of the real datasets, laid out exactly as ``datasets/<name>/README.md`` describes them.

Each builder takes the REAL annotation files from ``../shared/realdata`` (read-only), keeps a small seeded subset of
their rows and classes byte for byte (CRLF / LF, quoting, trailing spaces, punctuation in names), writes them where
the README puts them, and writes a short real video at every path the kept rows name, with the properties of the
real files (fps, frame size, container, codec, audio or none). Like a real download, a few listed files are missing
and a few are broken; ``Layout.missing`` / ``Layout.broken`` name them, so a test can require that exactly those
are reported and nothing else.

Where no real annotation file is in ``../shared/realdata`` the builder writes a small one in the documented format
and lists it in ``Layout.generated``:

- Kinetics-400 ``train.csv``: real ``validate.csv`` rows (other videos than the kept validate rows) with the split
  column set to ``train`` (no copy of the real train.csv was obtained: every one is over 5 MB);
- SSv2 ``something-something-v2-train.json``: real validation items (not the kept ones);
- AudioSet (class list and segment CSVs), ESC-50 (``meta/esc50.csv``), LibriSpeech (folders and transcripts) and
  the espeak-ng speaker set of ``videossl data speech``: none of their annotation files is in ../shared/realdata.

Videos are 1-3 s long instead of 10 s (Kinetics, AudioSet) or 2-10 s (UCF101, HMDB51), which keeps the rehearsal
cheap and also puts every sampler on clips shorter than the span it wants.

This lives in the tests, not in ``videossl``: it needs ../shared/realdata (not shipped) and users have real data.
"""
from __future__ import annotations

import json
import zlib
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .media import truncate, write_audio, write_html_error_page, write_video

REALDATA = Path(__file__).resolve().parents[3] / "shared" / "realdata"

# Kinetics-400 classes kept besides the 32 Kinetics-Sounds ones: names with the quirks the README lists
KINETICS_EXTRA_CLASSES = ("petting animal (not cat)", "massaging person's head", "air drumming")


@dataclass
class Layout:
    """One miniature dataset. ``root`` is the folder a recipe's ``/data/<name>`` stands for."""

    name: str
    root: Path
    missing: set[str] = field(default_factory=set)  # listed by the annotations, deliberately not written
    broken: set[str] = field(default_factory=set)  # written, deliberately unreadable
    silent: set[str] = field(default_factory=set)  # videos written without an audio track
    generated: list[str] = field(default_factory=list)  # annotation files written here (no real copy available)
    files: int = 0  # media files written


def _rng(name: str, seed: int) -> np.random.Generator:
    return np.random.default_rng(np.random.SeedSequence([seed, zlib.crc32(name.encode())]))


def _file_seed(path: str, seed: int) -> int:
    return zlib.crc32(f"{seed}:{path}".encode())


def _raw_lines(path: Path) -> tuple[list[bytes], bytes]:
    """The file's lines without their ending, and the ending (b"\\r\\n" or b"\\n")."""
    data = path.read_bytes()
    ending = b"\r\n" if b"\r\n" in data else b"\n"
    lines = data.split(ending)
    if lines and lines[-1] == b"":
        lines = lines[:-1]
    return lines, ending


def _write_lines(path: Path, lines: list[bytes], ending: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"".join(line + ending for line in lines))


def realdata(name: str) -> Path:
    folder = REALDATA / name
    if not folder.is_dir():
        raise FileNotFoundError(f"real annotation files not found at {folder}")
    return folder


# ----------------------------------------------------------------------------------------------------------------
# Kinetics-400 (and Kinetics-Sounds, a class subset of the same layout)
# ----------------------------------------------------------------------------------------------------------------


def build_kinetics400(root: Path, seed: int = 0) -> Layout:
    """``root/{train,validate,test}.csv`` (DeepMind flavour: ``label,youtube_id,time_start,time_end,split``, LF, no
    quoting) for the 32 Kinetics-Sounds classes plus three with quirky names; one video per class and split (two
    training videos for the quirky three).

    Videos ``<youtube_id>_<start:06d>_<end:06d>``: ``train/`` flat, ``val/<label_with_underscores>/`` and
    ``test/<label with spaces>/`` (both label-folder spellings of the README). 340x256 or 320x240 at 30, 29.97 or
    25 fps, H.264 + AAC 44.1 kHz, some silent. In ``train``, as in a real download: two videos missing, one
    truncated, one HTML error page saved as ``.mp4``, one ``.mkv`` (H.264 + Opus) and one ``.webm`` (VP9 + Opus).
    """
    from videossl.data.av_datasets import KINETICS_SOUNDS_CLASSES

    real = realdata("kinetics400")
    rng = _rng("kinetics400", seed)
    layout = Layout("kinetics400", root, generated=["train.csv (real validate.csv rows, split column 'train')"])
    classes = (*KINETICS_SOUNDS_CLASSES, *KINETICS_EXTRA_CLASSES)
    kept: dict[str, list[tuple[str, bytes]]] = {"train": [], "validate": [], "test": []}
    for source, splits in (("validate.csv", ("train", "validate")), ("test.csv", ("test",))):
        lines, ending = _raw_lines(real / source)
        header, rows = lines[0], lines[1:]
        by_class: dict[str, list[int]] = {}
        for i, line in enumerate(rows):
            by_class.setdefault(line.decode().split(",")[0], []).append(i)
        chosen = {split: [] for split in splits}
        for name in classes:
            # the quirky classes get a second training video: the missing ones are taken among those, so the
            # classes stay the same when their rows are dropped (derive_kinetics_complete)
            extra = int(name in KINETICS_EXTRA_CLASSES and "train" in splits)
            picks = rng.choice(by_class[name], size=len(splits) + extra, replace=False).tolist()
            for split, i in zip(splits, picks):
                chosen[split].append(int(i))
            if extra:
                chosen["train"].append(int(picks[-1]))
        for split in splits:
            out = []
            for i in sorted(chosen[split]):  # the real files' row order
                line = rows[i]
                if split == "train":  # DeepMind style: the split is the last field
                    line = line.rsplit(b",", 1)[0] + b",train"
                out.append(line)
                kept[split].append((line.decode().split(",")[0], line))
            _write_lines(root / f"{split}.csv", [header, *out], ending)
    twice = [k for k, (label, _) in enumerate(kept["train"]) if label in KINETICS_EXTRA_CLASSES]
    missing = [twice[i] for i in rng.choice(len(twice), size=2, replace=False)]
    if kept["train"][missing[0]][0] == kept["train"][missing[1]][0]:  # one missing video per class at most
        missing[1] = next(k for k in twice if kept["train"][k][0] != kept["train"][missing[0]][0])
    others = [k for k in range(len(kept["train"])) if k not in missing]
    odd = [*missing, *(others[i] for i in rng.choice(len(others), size=4, replace=False))]
    roles = dict(zip(odd, ("missing", "missing", "truncated", "html", "mkv", "webm")))
    for split, folder in (("train", "train"), ("validate", "val"), ("test", "test")):
        for k, (label, line) in enumerate(kept[split]):
            _, youtube_id, start, end, _ = line.decode().split(",")
            stem = f"{youtube_id}_{int(start):06d}_{int(end):06d}"
            where = root / folder
            if split == "validate":
                where = where / label.replace(" ", "_")
            elif split == "test":
                where = where / label
            role = roles.get(k) if split == "train" else None
            _kinetics_video(layout, where, stem, role, seed)
    return layout


def _kinetics_video(layout: Layout, folder: Path, stem: str, role: str | None, seed: int) -> None:
    path = folder / f"{stem}.mp4"
    s = _file_seed(stem, seed)
    pick = np.random.default_rng(s)
    width, height = ((340, 256), (320, 240))[int(pick.integers(0, 3) == 0)]
    fps = (30.0, 29.97, 25.0)[int(pick.integers(0, 3))]
    seconds = round(float(pick.uniform(1.5, 3.0)), 1)
    audio = None if pick.integers(0, 6) == 0 else "aac"
    if role == "missing":
        layout.missing.add(str(path))
        return
    if role == "mkv":
        write_video(folder / f"{stem}.mkv", width=width, height=height, fps=fps, seconds=seconds, seed=s,
                    audio="libopus")
    elif role == "webm":
        write_video(folder / f"{stem}.webm", width=width, height=height, fps=fps, seconds=seconds, seed=s,
                    codec="libvpx-vp9", audio="libopus")
    elif role == "html":
        write_html_error_page(path)
        layout.broken.add(str(path))
    else:
        write_video(path, width=width, height=height, fps=fps, seconds=seconds, seed=s, audio=audio)
        if audio is None:
            layout.silent.add(str(path))
        if role == "truncated":
            truncate(path)
            layout.broken.add(str(path))
    layout.files += 1


def derive_kinetics_complete(kinetics: Layout, root: Path) -> Layout:
    """The Kinetics layout with the rows of its missing videos dropped from the CSVs (what a user does to run an
    evaluation that refuses missing videos); the video folders are symbolic links to the original layout's."""
    layout = Layout("kinetics400_complete", root, broken=set(), silent=set(),
                    generated=["the CSVs of kinetics400 without the rows of missing videos"])
    root.mkdir(parents=True, exist_ok=True)
    gone = {Path(p).stem for p in kinetics.missing}  # <youtube_id>_<start:06d>_<end:06d>
    for csv_file in kinetics.root.glob("*.csv"):
        lines, ending = _raw_lines(csv_file)
        rows = [line.decode().split(",") for line in lines[1:]]
        keep = [line for line, row in zip(lines[1:], rows)
                if f"{row[1]}_{int(row[2]):06d}_{int(row[3]):06d}" not in gone]
        _write_lines(root / csv_file.name, [lines[0], *keep], ending)
    for folder in ("train", "val", "test"):
        (root / folder).symlink_to(kinetics.root / folder, target_is_directory=True)
    layout.broken = {p.replace(str(kinetics.root), str(root), 1) for p in kinetics.broken}
    layout.silent = {p.replace(str(kinetics.root), str(root), 1) for p in kinetics.silent}
    return layout


# ----------------------------------------------------------------------------------------------------------------
# UCF101
# ----------------------------------------------------------------------------------------------------------------

UCF_GROUPS = ((1, 7), (8, 14), (15, 21), (22, 25))  # test groups of splits 1, 2, 3; then always train


def build_ucf101(root: Path, seed: int = 0, num_classes: int = 4) -> Layout:
    """``root/UCF-101/<Class>/v_<Class>_gXX_cYY.avi`` and ``root/ucfTrainTestlist/`` (``classInd.txt`` verbatim, all
    101 classes; the six lists keep the rows of the kept videos, CRLF). Classes: ``HandstandPushups`` (its files are
    named ``v_HandStandPushups_*``) and seeded others; per class one clip from groups 1-7, 8-14, 15-21 and 22-25, so
    every split has 3 training and 1 test video per class. Xvid-style MPEG-4 in AVI, 320x240, 25 fps, about half
    with an MP3 track; one training video is truncated."""
    real = realdata("ucf101")
    rng = _rng("ucf101", seed)
    layout = Layout("ucf101", root)
    notes = root / "ucfTrainTestlist"
    notes.mkdir(parents=True, exist_ok=True)
    (notes / "classInd.txt").write_bytes((real / "classInd.txt").read_bytes())
    names = [line.split()[1].decode() for line in _raw_lines(real / "classInd.txt")[0]]
    others = [n for n in names if n != "HandstandPushups"]
    classes = ["HandstandPushups", *rng.choice(others, size=num_classes - 1, replace=False).tolist()]
    clips: dict[str, list[str]] = {}
    for list_name in ("trainlist01.txt", "testlist01.txt"):
        for line in _raw_lines(real / list_name)[0]:
            rel = line.decode().split()[0]
            clips.setdefault(rel.split("/")[0], []).append(rel)
    chosen: list[str] = []
    for name in classes:
        for low, high in UCF_GROUPS:
            group = [rel for rel in clips[name] if low <= int(rel.rsplit("_g", 1)[1][:2]) <= high]
            chosen.append(str(rng.choice(sorted(group))))
    keep = set(chosen)
    for kind in ("train", "test"):
        for k in (1, 2, 3):
            lines, ending = _raw_lines(real / f"{kind}list0{k}.txt")
            _write_lines(notes / f"{kind}list0{k}.txt", [ln for ln in lines if ln.decode().split()[0] in keep], ending)
    broken = chosen[3]  # the first class's group 22-25 clip: training video in every split
    for rel in chosen:
        path = root / "UCF-101" / rel
        s = _file_seed(rel, seed)
        pick = np.random.default_rng(s)
        audio = "libmp3lame" if pick.integers(0, 2) else None
        write_video(path, width=320, height=240, fps=25, seconds=round(float(pick.uniform(1.1, 3.0)), 1), seed=s,
                    codec="mpeg4", codec_tag="XVID", audio=audio)
        layout.files += 1
        if audio is None:
            layout.silent.add(str(path))
        if rel == broken:
            truncate(path)
            layout.broken.add(str(path))
    return layout


# ----------------------------------------------------------------------------------------------------------------
# HMDB51
# ----------------------------------------------------------------------------------------------------------------

HMDB_PUNCTUATION = set("!#&();[]+@~")


def build_hmdb51(root: Path, seed: int = 0, num_classes: int = 4) -> Layout:
    """``root/videos/<class>/<video>.avi`` and ``root/testTrainMulti_7030_splits/<class>_test_split{1,2,3}.txt``
    (the real lines of the kept videos: ``<video>.avi <0|1|2> `` with the trailing space, LF). Classes and videos
    are seeded, preferring names with HMDB51's punctuation (``[`` ``]`` ``!`` ``&`` ...); per class a test video of
    each split and one that trains in all three. DivX-style MPEG-4 in AVI, 240 px high, 30 fps, no audio (as
    HMDB51); one training video is truncated."""
    real = realdata("hmdb51")
    rng = _rng("hmdb51", seed)
    layout = Layout("hmdb51", root)
    splits_dir = root / "testTrainMulti_7030_splits"
    all_classes = sorted({p.name[: -len("_test_split1.txt")] for p in real.glob("*_test_split1.txt")})
    punctuated = [c for c in all_classes
                  if HMDB_PUNCTUATION & set((real / f"{c}_test_split1.txt").read_text(encoding="latin-1"))]
    classes = sorted(rng.choice(punctuated, size=min(num_classes, len(punctuated)), replace=False).tolist())
    kept_paths: list[tuple[str, str]] = []
    for name in classes:
        tables = [_raw_lines(real / f"{name}_test_split{k}.txt") for k in (1, 2, 3)]
        tags: dict[bytes, list[bytes]] = {}
        for lines, _ in tables:
            for line in lines:
                video, _, tag = line.rstrip(b" ").rpartition(b" ")
                tags.setdefault(video, []).append(tag)
        videos = list(tags)
        order = rng.permutation(len(videos)).tolist()
        order.sort(key=lambda i: not (HMDB_PUNCTUATION & set(videos[i].decode("latin-1"))))  # punctuated first
        chosen: list[bytes] = []
        for k in range(3):  # a test video of split k+1
            chosen.append(next(videos[i] for i in order if tags[videos[i]][k] == b"2" and videos[i] not in chosen))
        chosen.append(next(videos[i] for i in order if tags[videos[i]] == [b"1"] * 3))  # trains in every split
        keep = set(chosen)
        for k, (lines, ending) in enumerate(tables, 1):
            _write_lines(splits_dir / f"{name}_test_split{k}.txt",
                         [ln for ln in lines if ln.rstrip(b" ").rpartition(b" ")[0] in keep], ending)
        kept_paths += [(name, v.decode("latin-1")) for v in chosen]
    broken = kept_paths[3]  # the first class's always-training video
    for name, video in kept_paths:
        path = root / "videos" / name / video
        s = _file_seed(video, seed)
        pick = np.random.default_rng(s)
        width = (320, 352, 426)[int(pick.integers(0, 3))]
        write_video(path, width=width, height=240, fps=30, seconds=round(float(pick.uniform(1.0, 2.5)), 1), seed=s,
                    codec="mpeg4", codec_tag="DX50", audio=None)
        layout.files += 1
        layout.silent.add(str(path))
        if (name, video) == broken:
            truncate(path)
            layout.broken.add(str(path))
    return layout


# ----------------------------------------------------------------------------------------------------------------
# Something-Something v2
# ----------------------------------------------------------------------------------------------------------------


def build_ssv2(root: Path, seed: int = 0, per_split: int = 6) -> Layout:
    """``root/labels/something-something-v2-{labels,train,validation,test}.json`` (CRLF; labels verbatim, the lists
    keep ``per_split`` real items; train is generated from other validation items) and ``root/videos/<id>.webm``
    (VP9, 12 fps, 240 px high, no audio). One training video is missing."""
    real = realdata("ssv2")
    rng = _rng("ssv2", seed)
    layout = Layout("ssv2", root, generated=["something-something-v2-train.json (real validation items)"])
    labels = root / "labels"
    labels.mkdir(parents=True, exist_ok=True)
    label_file = "something-something-v2-labels.json"
    (labels / label_file).write_bytes((real / label_file).read_bytes())
    ids: dict[str, list[str]] = {}
    for split, source, count in (("validation", "validation", 2 * per_split), ("test", "test", per_split // 2)):
        lines, ending = _raw_lines(real / f"something-something-v2-{source}.json")
        items = [ln.rstrip(b",") for ln in lines if ln.startswith(b"{")]
        picks = sorted(rng.choice(len(items), size=count, replace=False).tolist())
        chosen = [items[i] for i in picks]
        parts = {"validation": chosen[::2], "train": chosen[1::2]} if split == "validation" else {"test": chosen}
        for name, part in parts.items():
            body = b"[" + ending + (b"," + ending).join(part) + ending + b"]" + ending
            (labels / f"something-something-v2-{name}.json").write_bytes(body)
            ids[name] = [json.loads(item)["id"] for item in part]
    for split, video_ids in ids.items():
        for k, video_id in enumerate(video_ids):
            path = root / "videos" / f"{video_id}.webm"
            if split == "train" and k == 0:
                layout.missing.add(str(path))
                continue
            s = _file_seed(video_id, seed)
            pick = np.random.default_rng(s)
            write_video(path, width=(427, 320)[int(pick.integers(0, 2))], height=240, fps=12,
                        seconds=round(float(pick.uniform(2.0, 4.0)), 1), seed=s, codec="libvpx-vp9", audio=None)
            layout.files += 1
            layout.silent.add(str(path))
    return layout


def derive_ssv2_complete(ssv2: Layout, root: Path) -> Layout:
    """The SSv2 layout with the items of its missing videos dropped from the JSON lists (what a user does to run an
    evaluation that refuses missing videos); ``videos/`` is a symbolic link to the original layout's."""
    layout = Layout("ssv2_complete", root, generated=["the JSON lists of ssv2 without the items of missing videos"])
    gone = {Path(p).stem for p in ssv2.missing}
    (root / "labels").mkdir(parents=True, exist_ok=True)
    for list_file in (ssv2.root / "labels").glob("*.json"):
        if list_file.name.endswith("-labels.json"):  # the template -> index object, verbatim
            (root / "labels" / list_file.name).write_bytes(list_file.read_bytes())
            continue
        lines, ending = _raw_lines(list_file)
        keep = [line for line in lines if not (line.startswith(b"{") and json.loads(line.rstrip(b","))["id"] in gone)]
        if len(keep) < len(lines):  # every item but the last ends in ","
            items = [k for k, line in enumerate(keep) if line.startswith(b"{")]
            keep = [line.rstrip(b",") + (b"," if k in items[:-1] else b"") if k in items else line
                    for k, line in enumerate(keep)]
        _write_lines(root / "labels" / list_file.name, keep, ending)
    (root / "videos").symlink_to(ssv2.root / "videos", target_is_directory=True)
    layout.silent = {p.replace(str(ssv2.root), str(root), 1) for p in ssv2.silent}
    return layout


# ----------------------------------------------------------------------------------------------------------------
# AudioSet
# ----------------------------------------------------------------------------------------------------------------

# a miniature ontology (index,mid,display_name); display names with commas are quoted, as in the real file
AUDIOSET_CLASSES = (("/m/09x0r", "Speech"), ("/m/05zppz", "Male speech, man speaking"),
                    ("/m/02zsn", "Female speech, woman speaking"), ("/m/04rlf", "Music"), ("/m/0jbk", "Animal"),
                    ("/m/07yv9", "Vehicle"))
AUDIOSET_SPLITS = {"balanced_train": 6, "unbalanced_train": 10, "eval": 6}


def build_audioset(root: Path, seed: int = 0) -> Layout:
    """``root/class_labels_indices.csv``, ``root/{balanced_train,unbalanced_train,eval}_segments.csv`` (three ``#``
    lines, then ``YTID, start_seconds, end_seconds, "mid,mid"``) and ``root/<split>/<YTID>_<start>_<end>.mp4``; a
    few clips use the other names the README accepts (``<YTID>_30.000_40.000``, ``_000030_000040``, ``Y<YTID>``).
    All generated (no AudioSet file is in ../shared/realdata): 320x240 25 fps H.264 + AAC. In ``unbalanced_train``
    one segment is missing (a dead link) and one file truncated."""
    rng = _rng("audioset", seed)
    layout = Layout("audioset", root,
                    generated=["class_labels_indices.csv", *(f"{split}_segments.csv" for split in AUDIOSET_SPLITS)])
    root.mkdir(parents=True, exist_ok=True)
    rows = ["index,mid,display_name", *(f'{i},{mid},"{name}"' for i, (mid, name) in enumerate(AUDIOSET_CLASSES))]
    (root / "class_labels_indices.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    alphabet = np.array(list("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"))
    for split, count in AUDIOSET_SPLITS.items():
        lines = ["# Segments csv created Sun Mar  5 10:54:31 2017",
                 f"# num_ytids={count}, num_segs={count}, num_unique_labels={len(AUDIOSET_CLASSES)}, "
                 f"num_positive_labels={2 * count}",
                 "# YTID, start_seconds, end_seconds, positive_labels"]
        for k in range(count):
            ytid = "".join(rng.choice(alphabet, size=11))
            if k == 0:
                ytid = "-" + ytid[1:]  # YTIDs may start with '-' (and hold '_')
            start = float(rng.integers(0, 30)) * 10
            mids = rng.choice(len(AUDIOSET_CLASSES), size=int(rng.integers(1, 3)), replace=False)
            labels = ",".join(AUDIOSET_CLASSES[int(m)][0] for m in mids)
            lines.append(f'{ytid}, {start:.3f}, {start + 10:.3f}, "{labels}"')
            stem = (f"{ytid}_{int(start)}_{int(start + 10)}", f"{ytid}_{start:.3f}_{start + 10:.3f}",
                    f"{ytid}_{int(start):06d}_{int(start + 10):06d}", f"Y{ytid}")[k % 4 if k < 4 else 0]
            path = root / split / f"{stem}.mp4"
            if split == "unbalanced_train" and k == 5:
                layout.missing.add(str(root / split / f"{ytid}_{int(start)}_{int(start + 10)}.mp4"))
                continue
            s = _file_seed(stem, seed)
            seconds = round(float(np.random.default_rng(s).uniform(2.0, 3.0)), 1)
            write_video(path, width=320, height=240, fps=25, seconds=seconds, seed=s, audio="aac")
            layout.files += 1
            if split == "unbalanced_train" and k == 6:
                truncate(path)
                layout.broken.add(str(path))
        (root / f"{split}_segments.csv").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return layout


# ----------------------------------------------------------------------------------------------------------------
# ESC-50, LibriSpeech, the espeak-ng speaker set
# ----------------------------------------------------------------------------------------------------------------

ESC50_CLASSES = ((0, "dog", True), (1, "rooster", True), (2, "pig", False), (3, "cow", False))


def build_esc50(root: Path, seed: int = 0) -> Layout:
    """``root/meta/esc50.csv`` (``filename,fold,target,category,esc10,src_file,take``) and
    ``root/audio/<fold>-<freesound id>-<take>-<target>.wav`` (44.1 kHz mono 16-bit, 5 s): 4 classes x 5 folds,
    generated (ESC-50 is not in ../shared/realdata)."""
    rng = _rng("esc50", seed)
    layout = Layout("esc50", root, generated=["meta/esc50.csv"])
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for fold in range(1, 6):
        for target, category, esc10 in ESC50_CLASSES:
            source = int(rng.integers(10_000, 300_000))
            name = f"{fold}-{source}-A-{target}.wav"
            rows.append(f"{name},{fold},{target},{category},{esc10},{source},A")
            write_audio(root / "audio" / name, seconds=5.0, rate=44100, seed=_file_seed(name, seed))
            layout.files += 1
    (root / "meta").mkdir(parents=True, exist_ok=True)
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n", encoding="utf-8")
    return layout


LIBRISPEECH_SPEAKERS = (("19", "198"), ("26", "495"), ("27", "123349"))


def build_librispeech(root: Path, seed: int = 0, utterances: int = 3) -> Layout:
    """``root/train-clean-100/<speaker>/<chapter>/<speaker>-<chapter>-<utterance:04d>.flac`` (16 kHz mono FLAC) with
    ``<speaker>-<chapter>.trans.txt``; 3 speakers x ``utterances``, 2-4 s each, generated."""
    layout = Layout("librispeech", root, generated=["train-clean-100/<speaker>/<chapter>/*.trans.txt"])
    for speaker, chapter in LIBRISPEECH_SPEAKERS:
        folder = root / "train-clean-100" / speaker / chapter
        lines = []
        for k in range(utterances):
            name = f"{speaker}-{chapter}-{k:04d}"
            pick = np.random.default_rng(_file_seed(name, seed))
            write_audio(folder / f"{name}.flac", seconds=round(float(pick.uniform(2.0, 4.0)), 2), rate=16000,
                        seed=_file_seed(name, seed))
            lines.append(f"{name} THE REHEARSAL HAS NO WORDS TO SAY")
            layout.files += 1
        (folder / f"{speaker}-{chapter}.trans.txt").write_text("\n".join(lines) + "\n", encoding="utf-8")
    return layout


def build_speech(root: Path, seed: int = 0, speakers: int = 3, utterances: int = 3) -> Layout:
    """The layout ``videossl data speech`` writes: ``root/<speaker>/<speaker>_<k>.wav`` (22.05 kHz mono 16-bit)
    and ``root/speakers.json``; generated tones, not speech (espeak-ng is not needed)."""
    layout = Layout("speech", root, generated=["the whole set (espeak-ng's output stands in as tones)"])
    names = [f"en-us+m{i + 1}" for i in range(speakers)]
    for name in names:
        for k in range(utterances):
            write_audio(root / name / f"{name}_{k}.wav", seconds=2.0, rate=22050, seed=_file_seed(f"{name}{k}", seed))
            layout.files += 1
    (root / "speakers.json").write_text(json.dumps({"speakers": names, "rehearsal": True}), encoding="utf-8")
    return layout


def write_image_vit_weights(path: Path, seed: int = 0) -> Path:
    """A miniature of DINO's ``dino_vitbase16_pretrain.pth`` (a plain state dict in timm key layout:
    ``cls_token``, ``pos_embed``, ``patch_embed.proj.*``, ``blocks.<i>.*``, ``norm.*``) shaped like the image ViT
    of ``tiny_timesformer`` (64 wide, 2 blocks, 8 px patches, 32 px), so SVT's inflation runs on the tiny backbone."""
    import torch
    from transformers import ViTConfig, ViTModel

    from videossl.backbones.inflate import canonical_image_vit

    torch.manual_seed(seed)
    config = ViTConfig(hidden_size=64, num_hidden_layers=2, num_attention_heads=2, intermediate_size=256,
                       image_size=32, patch_size=8, layer_norm_eps=1e-6)
    state, left_out = canonical_image_vit(ViTModel(config, add_pooling_layer=False).state_dict())
    assert not left_out, left_out
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


BUILDERS = {"kinetics400": build_kinetics400, "ucf101": build_ucf101, "hmdb51": build_hmdb51, "ssv2": build_ssv2,
            "audioset": build_audioset, "ESC-50": build_esc50, "LibriSpeech": build_librispeech, "speech": build_speech}
