"""Manifests for datasets with official splits: one ``train.csv`` / ``test.csv`` (+ ``classes.txt``) per split."""
from __future__ import annotations

from pathlib import Path

from videossl.data.datasets import read_dataset, write_manifest


def write_split_manifests(fmt: str, root: str, annotations: str | None, out: str | Path,
                          split_ids: tuple[int, ...] = (1, 2, 3)) -> list[Path]:
    """Write ``<out>/split<k>/{train,test}.csv`` for each official split of ``fmt`` (``ucf101``, ``hmdb51``) and print
    how many listed videos are missing under ``root``. Read back with ``--format csv``."""
    written = []
    for split_id in split_ids:
        for split in ("train", "test"):
            index = read_dataset(fmt, root, split, split_id, annotations=annotations)
            path = write_manifest(index, Path(out) / f"split{split_id}" / f"{split}.csv")
            missing = sum(not Path(e.path).is_file() for e in index.entries)
            print(f"{path}: {len(index.entries)} videos, {len(index.class_names)} classes, {missing} missing")
            written.append(path)
    return written
