"""``videossl data stats``: how many entries each split and class has, and which annotated videos are missing.

    videossl data stats --format ucf101 --root data/ucf101 [--annotations A] [--split-id 1] [--splits train,test]

Reads the annotations with the format's reader (no decoding) and checks that each entry's file exists.
"""
from __future__ import annotations

import argparse
from collections import Counter
from pathlib import Path
from typing import Any

from videossl.data.datasets import DatasetError, read_dataset
from videossl.errors import UserError

DEFAULT_SPLITS = {"ucf101": ("train", "test"), "hmdb51": ("train", "test"), "kinetics": ("train", "val", "test"),
                  "ssv2": ("train", "validation", "test"), "librispeech": ("train-clean-100",)}


def dataset_stats(format: str, root: str, splits: tuple[str, ...] | None = None, split_id: int = 1,
                  annotations: str | None = None) -> dict[str, Any]:
    """Per split: ``{"entries", "classes", "per_class": Counter, "missing": [paths]}`` plus ``class_names``;
    splits whose annotation file is absent are reported in ``unavailable: {split: reason}``."""
    kwargs = {"annotations": annotations} if annotations else {}
    result: dict[str, Any] = {"splits": {}, "unavailable": {}, "class_names": []}
    for split in splits or DEFAULT_SPLITS.get(format, ("train",)):
        try:
            index = read_dataset(format, root, split=split, split_id=split_id, **kwargs)
        except DatasetError as err:
            result["unavailable"][split] = str(err)
            continue
        result["class_names"] = result["class_names"] or index.class_names
        result["splits"][split] = {
            "entries": len(index.entries),
            "classes": len({e.label for e in index.entries if e.label >= 0}),
            "per_class": Counter(e.label for e in index.entries),
            "missing": [e.path for e in index.entries if not Path(e.path).is_file()],
        }
    return result


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--format", required=True, help="folder, csv, ucf101, hmdb51, kinetics, ssv2, images, audio, "
                        "librispeech")
    parser.add_argument("--root", required=True, help="dataset folder (videos; annotations are looked up here too)")
    parser.add_argument("--annotations", default=None, help="folder holding the annotation files, if not under root")
    parser.add_argument("--split-id", type=int, default=1, help="official split number (ucf101, hmdb51: 1-3)")
    parser.add_argument("--splits", default=None, help="comma-separated splits (default: the format's usual ones)")
    parser.add_argument("--show-missing", type=int, default=20, help="list at most this many missing videos per split")
    parser.add_argument("--no-classes", action="store_true", help="do not print the per-class table")


def run(args: argparse.Namespace) -> int:
    splits = tuple(s.strip() for s in args.splits.split(",")) if args.splits else None
    stats = dataset_stats(args.format, args.root, splits, args.split_id, args.annotations)
    for split, reason in stats["unavailable"].items():
        print(f"split {split}: not available ({reason})")
    if not stats["splits"]:
        raise UserError(f"no split of {args.format} dataset at {args.root} could be read (see above)")
    names = stats["class_names"]
    order = list(stats["splits"])
    for split, s in stats["splits"].items():
        print(f"split {split}: {s['entries']} entries, {s['classes']} classes, {len(s['missing'])} missing videos")
    if not args.no_classes:
        labels = sorted({label for s in stats["splits"].values() for label in s["per_class"]})
        width = max([len(n) for n in names] + [12])
        print(f"{'class':{width}s} " + " ".join(f"{sp:>10s}" for sp in order))
        for label in labels:
            name = names[label] if 0 <= label < len(names) else ("(unlabeled)" if label < 0 else str(label))
            print(f"{name:{width}s} " + " ".join(f"{stats['splits'][sp]['per_class'].get(label, 0):10d}" for sp in order))
    for split, s in stats["splits"].items():
        for path in s["missing"][: args.show_missing]:
            print(f"missing [{split}]: {path}")
        if len(s["missing"]) > args.show_missing:
            print(f"missing [{split}]: ... and {len(s['missing']) - args.show_missing} more")
    return 0
