"""Build videossl manifests for Kinetics-400/600/700 from the official CSVs (ActivityNet or DeepMind flavour).

    python datasets/kinetics/prepare.py --root data/kinetics400 --version 400 --out manifests/kinetics400

Videos are expected trimmed as ``<root>/<split>/[<label>/]<youtube_id>_<start:06d>_<end:06d>.mp4`` (the
ActivityNet crawler's naming); ``--untrimmed`` takes ``<youtube_id>.mp4`` and keeps the segment times in the
manifest. Writes ``<out>/{train,val,test}.csv`` + ``classes.txt``; splits whose CSV is absent are skipped.
"""
import argparse
import sys
from pathlib import Path

from videossl.data.datasets import DatasetError, read_dataset, write_manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder with train/ val/ test/ video folders")
    parser.add_argument("--annotations", default=None, help="folder with the CSVs (default: root)")
    parser.add_argument("--version", default=None, help="400, 600, 700 (picks kinetics-<v>_<split>.csv)")
    parser.add_argument("--untrimmed", action="store_true", help="videos are whole YouTube files <id>.mp4")
    parser.add_argument("--out", required=True, help="where the manifests go")
    args = parser.parse_args(argv)
    wrote = 0
    for split in ("train", "val", "test"):
        try:
            index = read_dataset("kinetics", args.root, split, annotations=args.annotations, version=args.version,
                                 trimmed=not args.untrimmed)
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
