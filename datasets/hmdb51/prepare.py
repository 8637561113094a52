"""Build videossl manifests for HMDB51 (3 official splits) from the 153 *_test_split<k>.txt files.

    python datasets/ucf101/prepare.py --root data/hmdb51/videos --annotations data/hmdb51/testTrainMulti_7030_splits \
        --out manifests/hmdb51

Writes ``<out>/split<k>/{train,test}.csv`` + ``classes.txt`` (read back with ``--format csv``) and reports
how many listed videos are missing under ``--root``.
"""
import argparse
import sys
from pathlib import Path

from videossl.data.datasets import read_dataset, write_manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder with <class>/<video>.avi")
    parser.add_argument("--annotations", default=None, help="folder with <class>_test_split<k>.txt")
    parser.add_argument("--out", required=True, help="where the manifests go")
    args = parser.parse_args(argv)
    for split_id in (1, 2, 3):
        for split in ("train", "test"):
            index = read_dataset("hmdb51", args.root, split, split_id, annotations=args.annotations)
            path = write_manifest(index, Path(args.out) / f"split{split_id}" / f"{split}.csv")
            missing = sum(not Path(e.path).is_file() for e in index.entries)
            print(f"{path}: {len(index.entries)} videos, {len(index.class_names)} classes, {missing} missing")
    return 0


if __name__ == "__main__":
    sys.exit(main())
