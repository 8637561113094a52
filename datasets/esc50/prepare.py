"""Build videossl manifests for ESC-50's five folds.

    python datasets/esc50/prepare.py --root data/ESC-50 --out manifests/esc50

Writes ``<out>/fold<k>/{train,test}.csv`` + ``classes.txt`` for k = 1..5 (test = fold k, train = the other four;
read back with ``--format csv``) and reports missing files.
"""
import argparse
import sys
from pathlib import Path

from videossl.data.datasets import DatasetError, read_dataset, write_manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder with meta/esc50.csv and audio/")
    parser.add_argument("--out", required=True, help="where the manifests go")
    args = parser.parse_args(argv)
    try:
        for fold in range(1, 6):
            for split in ("train", "test"):
                index = read_dataset("esc50", args.root, split, split_id=fold)
                path = write_manifest(index, Path(args.out) / f"fold{fold}" / f"{split}.csv")
                missing = sum(not Path(e.path).is_file() for e in index.entries)
                print(f"{path}: {len(index.entries)} clips, {len(index.class_names)} classes, {missing} missing")
    except DatasetError as err:
        print(f"esc50: {err}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
