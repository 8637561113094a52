"""Build a videossl manifest for an image folder (ImageNet-style ``<root>/<split>/<class>/<image>``).

    python datasets/images/prepare.py --root data/imagenet --splits train,val --out manifests/imagenet

Images are T=1 clips: every method trains on them unchanged (``data.num_frames=1``). A flat folder of
images is unlabeled (label -1). Writes ``<out>/<split>.csv`` + ``classes.txt``.
"""
import argparse
import sys
from pathlib import Path

from videossl.data.datasets import read_dataset, write_manifest


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="image folder (with <split>/ subfolders or not)")
    parser.add_argument("--splits", default="train", help="comma-separated split folders under root")
    parser.add_argument("--out", required=True, help="where the manifests go")
    args = parser.parse_args(argv)
    for split in args.splits.split(","):
        index = read_dataset("images", args.root, split.strip())
        path = write_manifest(index, Path(args.out) / f"{split.strip()}.csv")
        print(f"{path}: {len(index.entries)} images, {len(index.class_names)} classes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
