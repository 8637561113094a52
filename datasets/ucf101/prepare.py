"""Build videossl manifests for UCF101 (3 official splits) from the released split lists.

    python datasets/ucf101/prepare.py --root data/ucf101/UCF-101 --annotations data/ucf101/ucfTrainTestlist \
        --out manifests/ucf101

Writes ``<out>/split<k>/{train,test}.csv`` + ``classes.txt`` (read back with ``--format csv``) and reports
how many listed videos are missing under ``--root``.
"""
import argparse
import sys

from videossl.data.manifests import write_split_manifests


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--root", required=True, help="folder with <Class>/v_<Class>_gXX_cYY.avi")
    parser.add_argument("--annotations", default=None, help="folder with classInd.txt, trainlist0k.txt, testlist0k.txt")
    parser.add_argument("--out", required=True, help="where the manifests go")
    args = parser.parse_args(argv)
    write_split_manifests("ucf101", args.root, args.annotations, args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
