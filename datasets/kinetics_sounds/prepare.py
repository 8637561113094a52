"""Build videossl manifests for Kinetics-Sounds (the 32 audible Kinetics-400 classes) from a Kinetics-400 copy.

    python datasets/kinetics_sounds/prepare.py --root data/kinetics400 --out manifests/kinetics_sounds

Writes ``<out>/{train,val,test}.csv`` + ``classes.txt`` (read back with ``--format csv``) for the splits whose
labelled CSV is present, and reports the clips per class and how many videos are missing. ``--classes FILE`` uses
another class list (one Kinetics-400 name per line).
"""
import argparse
import sys
from collections import Counter
from pathlib import Path

from videossl.data.datasets import DatasetError, read_dataset, write_manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="a Kinetics-400 folder: CSVs and train/ val/ test/ videos")
    parser.add_argument("--annotations", default=None, help="folder with the CSVs (default: root)")
    parser.add_argument("--version", default=None, help="400 picks kinetics-400_<split>.csv over train.csv / validate.csv")
    parser.add_argument("--classes", default=None, help="class list file (default: the 32 SeLaVi / L3 classes)")
    parser.add_argument("--untrimmed", action="store_true", help="videos are whole YouTube files <id>.mp4")
    parser.add_argument("--out", required=True, help="where the manifests go")
    args = parser.parse_args(argv)
    wrote = 0
    for split in ("train", "val", "test"):
        try:
            index = read_dataset("kinetics_sounds", args.root, split, annotations=args.annotations,
                                 version=args.version, classes=args.classes, trimmed=not args.untrimmed)
        except DatasetError as err:
            print(f"skipping {split}: {err}")
            continue
        path = write_manifest(index, Path(args.out) / f"{split}.csv")
        missing = sum(not Path(e.path).is_file() for e in index.entries)
        counts = Counter(e.label for e in index.entries)
        print(f"{path}: {len(index.entries)} videos, {len(index.class_names)} classes "
              f"({min(counts.values())}-{max(counts.values())} per class), {missing} missing")
        wrote += 1
    return 0 if wrote else 2


if __name__ == "__main__":
    sys.exit(main())
