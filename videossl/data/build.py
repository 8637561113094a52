"""From a data config (``videossl.data.config``: pretraining's ``DataConfig`` or evaluation's ``EvalDataConfig``) to a
``DatasetIndex`` and a ``VideoDataset``: the one place the engine, evaluation, the quickstart and the benchmarks map
format + root + annotations + split to the videos they read."""
from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from ..errors import UserError
from .datasets import READERS, DatasetIndex, read_dataset
from .sampling import ViewSpec
from .synthetic import ensure_synthetic
from .synthetic_factors import factor_root, read_factor_split
from .video_dataset import VideoDataset


def known_formats() -> list[str]:
    """Every ``data.format``: the dataset readers, ``synthetic`` and ``synthetic_factors``."""
    return sorted([*READERS, "synthetic", "synthetic_factors"])


def check_format(fmt: str) -> None:
    """``UserError`` naming the valid formats (and the closest one) when ``fmt`` is not a ``data.format``."""
    formats = known_formats()
    if fmt not in formats:
        close = difflib.get_close_matches(str(fmt), formats, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"data.format: unknown format '{fmt}'{hint}; valid formats: {', '.join(formats)}")


def resolve_data_root(data_cfg: Any) -> tuple[str, str]:
    """``(format, root)`` for the reader; ``format=synthetic`` generates (once, cached) and points at its folders."""
    check_format(data_cfg.format)
    if data_cfg.format == "synthetic_factors":  # the factor dataset, generated once and cached
        return "folder", str(factor_root(data_cfg))
    if data_cfg.format != "synthetic":
        if not data_cfg.root:
            raise UserError(f"data.root is empty: set it to the {data_cfg.format} dataset folder")
        if not Path(data_cfg.root).expanduser().exists():
            raise UserError(f"data.root does not exist: {data_cfg.root}")
        return data_cfg.format, data_cfg.root
    s = data_cfg.synthetic
    root = ensure_synthetic(data_cfg.root or None, num_pool=s.num_pool, num_train=s.num_train,
                            num_test=s.num_test, size=s.size, seed=s.seed)
    return "folder", str(root)


def build_index(data_cfg: Any, split: str, split_id: int | None = None) -> DatasetIndex:
    """The reader's ``DatasetIndex`` for ``split`` (synthetic: ``pool``, ``train`` or ``test`` folders) of official
    split ``split_id`` (default ``data_cfg.split_id``, else 1); a reader's complaint is one ``UserError`` line."""
    if data_cfg.format == "synthetic_factors":  # evaluation: data.factor's labelled lists (csv reader)
        return read_factor_split(data_cfg, split)
    fmt, root = resolve_data_root(data_cfg)
    if data_cfg.format == "synthetic":
        if split not in ("pool", "train", "test"):
            raise UserError(f"data.split={split!r}: the synthetic dataset has splits pool, train, test")
        return read_dataset("folder", str(Path(root) / split))
    split_id = int(split_id if split_id is not None else data_cfg.get("split_id", 1))
    annotations = data_cfg.get("annotations", "")
    kwargs = {"annotations": annotations} if annotations else {}
    try:
        return read_dataset(fmt, root, split=split, split_id=split_id, **kwargs)
    except UserError:
        raise
    except (FileNotFoundError, ValueError, KeyError) as err:
        raise UserError(f"data ({data_cfg.format} at {data_cfg.root}, {split} split {split_id}): {err}") from None


def dataset_from_index(data_cfg: Any, index: DatasetIndex, views: ViewSpec, seed: int = 0,
                       short_side: int | None = None, bad_file_log: str | None = None,
                       replace_unreadable: bool = True) -> VideoDataset:
    """A ``VideoDataset`` over ``index`` with ``data_cfg``'s decoder and decode timeout. ``short_side`` (default
    ``data.short_side``, 0: the file's size); ``replace_unreadable=False`` (evaluation) yields ``None`` for an
    unreadable file instead of another video (collate with ``video_dataset.collate_readable``)."""
    side = int(short_side if short_side is not None else data_cfg.get("short_side", 0))
    return VideoDataset(index, views, decoder=data_cfg.decoder, seed=seed, short_side=side or None,
                        bad_file_log=bad_file_log, decode_timeout_s=float(data_cfg.get("decode_timeout_s", 60.0)),
                        replace_unreadable=replace_unreadable)


def build_dataset(data_cfg: Any, views: ViewSpec, split: str, seed: int = 0, bad_file_log: str | None = None):
    """A ``VideoDataset`` yielding the method's views for every video of ``split`` (pretraining)."""
    index = build_index(data_cfg, split)
    if len(index.entries) == 0:
        raise UserError(f"data: no videos found for format={data_cfg.format} root={data_cfg.root!r} split={split}")
    return dataset_from_index(data_cfg, index, views, seed=seed, bad_file_log=bad_file_log)
