"""Build videossl manifests for AudioSet from its segment CSVs (multi-label).

    python datasets/audioset/prepare.py --root data/audioset --out manifests/audioset [--splits balanced_train,eval]

Writes ``<out>/<split>.csv`` + ``classes.txt`` (first positive label; read back with ``--format csv``) and
``<out>/<split>_labels.csv`` (``path,labels`` with every positive class index, space-separated), and reports how
many segments have no file yet.
"""
import argparse
import csv
import sys
from pathlib import Path

from videossl.data.av_datasets import read_audioset_multilabel
from videossl.data.datasets import DatasetError, write_manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder with the CSVs and <split>/ media folders")
    parser.add_argument("--annotations", default=None, help="folder with the CSVs (default: root)")
    parser.add_argument("--video-root", default=None, help="folder with the <split>/ media folders (default: root)")
    parser.add_argument("--splits", default="balanced_train,eval", help="comma-separated (unbalanced_train is ~2M rows)")
    parser.add_argument("--out", required=True, help="where the manifests go")
    args = parser.parse_args(argv)
    wrote = 0
    for split in [s.strip() for s in args.splits.split(",") if s.strip()]:
        try:
            index, labels = read_audioset_multilabel(Path(args.root), split, annotations=args.annotations,
                                                     video_root=args.video_root)
        except DatasetError as err:
            print(f"skipping {split}: {err}")
            continue
        path = write_manifest(index, Path(args.out) / f"{split}.csv")
        with open(Path(args.out) / f"{split}_labels.csv", "w", newline="", encoding="utf-8") as handle:
            writer = csv.writer(handle)
            writer.writerow(["path", "labels"])
            writer.writerows([e.path, " ".join(map(str, positive))] for e, positive in zip(index.entries, labels))
        missing = sum(not Path(e.path).is_file() for e in index.entries)
        mean = sum(map(len, labels)) / max(1, len(labels))
        print(f"{path}: {len(index.entries)} segments, {mean:.2f} labels each, {missing} missing")
        wrote += 1
    return 0 if wrote else 2


if __name__ == "__main__":
    sys.exit(main())
