"""Build videossl manifests for Something-Something v2 from the released JSON files.

    python datasets/ssv2/prepare.py --root data/ssv2/videos --annotations data/ssv2/labels --out manifests/ssv2

Videos are ``<root>/<id>.webm``; the test list has no labels (label -1). Writes
``<out>/{train,validation,test}.csv`` + ``classes.txt`` (174 templates); absent splits are skipped.
"""
import argparse
import sys
from pathlib import Path

from videossl.data.datasets import DatasetError, read_dataset, write_manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder with <id>.webm")
    parser.add_argument("--annotations", default=None, help="folder with something-something-v2-*.json (default: root)")
    parser.add_argument("--out", required=True, help="where the manifests go")
    args = parser.parse_args(argv)
    wrote = 0
    for split in ("train", "validation", "test"):
        try:
            index = read_dataset("ssv2", args.root, split, annotations=args.annotations)
        except DatasetError as err:
            print(f"skipping {split}: {err}")
            continue
        path = write_manifest(index, Path(args.out) / f"{split}.csv")
        missing = sum(not Path(e.path).is_file() for e in index.entries)
        print(f"{path}: {len(index.entries)} videos, {len(index.class_names)} classes, {missing} missing")
        wrote += 1
    return 0 if wrote else 2


if __name__ == "__main__":
    sys.exit(main())
