"""Build videossl manifests for HMDB51 (3 official splits) from the 153 *_test_split<k>.txt files.

    python datasets/hmdb51/prepare.py --root data/hmdb51/videos --annotations data/hmdb51/testTrainMulti_7030_splits \
        --out manifests/hmdb51

Writes ``<out>/split<k>/{train,test}.csv`` + ``classes.txt`` (read back with ``--format csv``) and reports
how many listed videos are missing under ``--root``.
"""
import argparse
import sys

from videossl.data.manifests import write_split_manifests


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder with <class>/<video>.avi")
    parser.add_argument("--annotations", default=None, help="folder with <class>_test_split<k>.txt")
    parser.add_argument("--out", required=True, help="where the manifests go")
    args = parser.parse_args(argv)
    write_split_manifests("hmdb51", args.root, args.annotations, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
