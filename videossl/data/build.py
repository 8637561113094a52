"""From a ``DataConfig`` and a method's ``ViewSpec`` to a dataset: the one place the engine, the quickstart and
the benchmarks build training data."""
from __future__ import annotations

from pathlib import Path

from omegaconf import DictConfig

from ..errors import UserError
from .sampling import ViewSpec


def known_formats() -> list[str]:
    """Every ``data.format``: the dataset readers and ``synthetic``."""
    from .datasets import READERS

    return sorted([*READERS, "synthetic"])


def check_format(fmt: str) -> None:
    """``UserError`` naming the valid formats (and the closest one) when ``fmt`` is not a ``data.format``."""
    formats = known_formats()
    if fmt not in formats:
        import difflib

        close = difflib.get_close_matches(str(fmt), formats, n=1)
        hint = f" (did you mean '{close[0]}'?)" if close else ""
        raise UserError(f"data.format: unknown format '{fmt}'{hint}; valid formats: {', '.join(formats)}")


def resolve_data_root(data_cfg: DictConfig) -> tuple[str, str]:
    """``(format, root)`` for the reader; ``format=synthetic`` generates (once, cached) and points at its folders."""
    if data_cfg.format != "synthetic":
        check_format(data_cfg.format)
        if not data_cfg.root:
            raise UserError(f"data.root is empty: set it to the {data_cfg.format} dataset folder")
        if not Path(data_cfg.root).exists():
            raise UserError(f"data.root does not exist: {data_cfg.root}")
        return data_cfg.format, data_cfg.root
    from .synthetic import ensure_synthetic

    s = data_cfg.synthetic
    root = ensure_synthetic(data_cfg.root or None, num_pool=s.num_pool, num_train=s.num_train,
                            num_test=s.num_test, size=s.size, seed=s.seed)
    return "folder", str(root)


def build_index(data_cfg: DictConfig, split: str):
    """The reader's ``DatasetIndex`` for ``split`` (synthetic: ``pool``, ``train`` or ``test`` folders)."""
    from .datasets import read_dataset

    fmt, root = resolve_data_root(data_cfg)
    if data_cfg.format == "synthetic":
        if split not in ("pool", "train", "test"):
            raise UserError(f"data.split={split!r}: the synthetic dataset has splits pool, train, test")
        return read_dataset("folder", str(Path(root) / split))
    kwargs = {"annotations": data_cfg.annotations} if data_cfg.annotations else {}
    return read_dataset(fmt, root, split=split, split_id=data_cfg.split_id, **kwargs)


def build_dataset(data_cfg: DictConfig, views: ViewSpec, split: str, seed: int = 0, bad_file_log: str | None = None):
    """A ``VideoDataset`` yielding the method's views for every video of ``split``."""
    from .video_dataset import VideoDataset

    index = build_index(data_cfg, split)
    if len(index.entries) == 0:
        raise UserError(f"data: no videos found for format={data_cfg.format} root={data_cfg.root!r} split={split}")
    return VideoDataset(index, views, decoder=data_cfg.decoder, seed=seed,
                        short_side=data_cfg.short_side or None, bad_file_log=bad_file_log,
                        decode_timeout_s=data_cfg.get("decode_timeout_s", 60.0))
