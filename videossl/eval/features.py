"""Frozen features: load the encoder, read the dataset, extract ``(N, V, D)`` features once, cache them.

The cache lives in memory for the process, keyed by (encoder, dataset, split, view set), so the linear
probe, kNN and retrieval of one encoder share one extraction (``run_frozen_protocols``), and calling
``run_linear_probe`` then ``run_knn`` in one process extracts once too.
"""
from __future__ import annotations

import contextlib
import logging
from collections import OrderedDict
from pathlib import Path
from typing import Any, Callable, NamedTuple

import torch
from torch.utils.data import DataLoader
from tqdm import tqdm

from videossl.backbones import create_backbone, load_encoder
from videossl.data.bad_files import bad_files
from videossl.data.build import build_index, dataset_from_index
from videossl.data.video_dataset import collate_readable
from videossl.errors import UserError

from .views import multi_view_spec

log = logging.getLogger("videossl.eval")
RANDOM_PREFIX = "random:"
_CACHE_SIZE = 8  # (encoder, split, view set) entries kept; UCF101 test at 30 views x 512 dims is ~230 MB
_FEATURE_CACHE: "OrderedDict[tuple, CachedFeatures]" = OrderedDict()


class CachedFeatures(NamedTuple):
    """features: ``(N, V, D)`` float32 (N videos, V views each); labels: ``(N,)`` int64;
    skipped: paths of videos that failed to decode and are left out (N = listed videos - skipped);
    bad_files: every file the dataset skipped, with its reason and count (``videossl.data.bad_files.BadFile``),
    for the run's ``bad_files.csv``."""

    features: torch.Tensor
    labels: torch.Tensor
    class_names: list[str]
    skipped: tuple[str, ...] = ()
    bad_files: tuple = ()


def resolve_device(name: str) -> torch.device:
    """``"auto"`` -> CUDA when available, else CPU; ``"cuda"`` without a GPU is a ``UserError``."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise UserError(f"device: '{name}' requested but no CUDA device is available (use device=cpu or auto)")
    try:
        return torch.device(name)
    except RuntimeError as err:
        raise UserError(f"device: '{name}' is not a device ({err})") from None


def load_eval_encoder(spec: str, seed: int = 0) -> tuple[torch.nn.Module, tuple]:
    """``encoder.pt`` path or ``random:<backbone>`` (random init, seeded by ``seed``) -> (backbone, cache key).

    The key changes when the file changes (path, size, mtime), so a re-trained encoder is re-extracted.
    """
    if spec.startswith(RANDOM_PREFIX):
        name = spec[len(RANDOM_PREFIX):]
        torch.manual_seed(seed)
        try:
            backbone = create_backbone(name)
        except KeyError as err:
            raise UserError(f"encoder: {err.args[0]}") from None
        key: tuple = ("random", name, seed)
    else:
        path = Path(spec).expanduser()
        if not path.is_file():
            raise UserError(f"encoder: file not found: {path} (give an encoder.pt or random:<backbone>)")
        backbone = load_encoder(path)  # every kind of wrong file is one UserError line (videossl.loading)
        stat = path.stat()
        key = ("file", str(path.resolve()), stat.st_size, stat.st_mtime_ns)
    if getattr(backbone, "modality", "video") != "video":
        raise UserError(f"encoder: {spec} is a {backbone.modality} backbone; these protocols evaluate video encoders")
    return backbone, key


def read_split(data: Any, split: str, split_id: int) -> Any:
    """``DatasetIndex`` of ``split`` ("train" | "test") for official split ``split_id``, through the data layer's
    ``build_index`` (the one reader pretraining uses too), plus evaluation's checks: labelled videos only, and at
    most ``data.max_missing`` of them missing on disk (those stay in the index: the dataset reports them as
    unreadable, so they are left out of the features and listed in ``bad_files.csv``)."""
    if split == "test":  # data.test_split: "validation" where the test list has no labels (SSv2)
        split = str(data.get("test_split") or "test")
    index = build_index(data, split, split_id)
    if len(index.entries) == 0:
        raise UserError(f"data: no {split} videos found for format={data.format} root={data.root} split={split_id}")
    if any(e.label < 0 for e in index.entries):
        hint = " (its labelled held-out list: data.test_split=validation)" if data.format == "ssv2" else " (a flat folder?)"
        raise UserError(f"data: {split} videos under {data.root} have no labels{hint}; evaluation needs classes")
    missing = [e.path for e in index.entries if not Path(e.path).is_file()]
    allowed = float(data.get("max_missing", 0.0) or 0.0)
    if missing and len(missing) > allowed * len(index.entries):  # a subset makes numbers incomparable: refuse
        raise UserError(f"data: {len(missing)} of {len(index.entries)} {split} videos of split {split_id} are missing "
                        f"(first: {missing[0]}; more than data.max_missing={allowed:g} of them); `videossl data stats` "
                        f"lists them all")
    if missing:
        log.warning("data: %d of %d %s videos of split %d are missing (within data.max_missing=%g); they are left out "
                    "and listed in bad_files.csv (first: %s)", len(missing), len(index.entries), split, split_id,
                    allowed, missing[0])
    return index


def check_clip_settings(data: Any) -> None:
    """Clip settings below 1 are a ``UserError`` now, never "every video is unreadable" later."""
    for key in ("num_frames", "frame_stride", "crop_size"):
        if int(data[key]) < 1:
            raise UserError(f"data.{key} must be >= 1, got {data[key]}")
    if int(data.short_side) < 0:
        raise UserError(f"data.short_side must be >= 0 (0: decode at data.crop_size), got {data.short_side}")


def left_out(index: Any, loaded: torch.Tensor, desc: str) -> tuple[torch.Tensor, tuple[str, ...]]:
    """``(order, skipped)``: the rows of the loaded ``(M,)`` entry indices sorted into index order, and the paths
    of the entries that were not loaded (unreadable or missing files: left out, never replaced). A split whose
    every video is unreadable is a ``UserError`` (a setting, e.g. the decoder, not the files)."""
    order = torch.argsort(loaded)
    read = set(loaded.tolist())
    skipped = tuple(e.path for i, e in enumerate(index.entries) if i not in read)
    if not read:
        raise UserError(f"{desc}: none of the {len(index.entries)} videos could be read (first: {skipped[0]}); when "
                        f"every file fails the cause is usually a setting (data.decoder, data.short_side, "
                        f"data.decode_timeout_s); `videossl data check {skipped[0]}` tests one file")
    if skipped:
        log.warning("%s: left out %d of %d videos that could not be read (first: %s); they are listed in "
                    "bad_files.csv", desc, len(skipped), len(index.entries), skipped[0])
    return order, skipped


def extract_features(encoder: torch.nn.Module, index: Any, spec: Any, data: Any, *, seed: int = 0,
                     device: torch.device = torch.device("cpu"), progress: bool = False,
                     desc: str = "features", forward: Callable[[torch.Tensor], torch.Tensor] | None = None
                     ) -> CachedFeatures:
    """Run ``encoder.forward_features`` (or ``forward``) on every view of every readable video of ``index``.

    spec: the ``ViewSpec`` (all views of a video must have the same shape). Clips ``(B*V, C, T, H, W)``
    go through the encoder in eval mode. Returns ``(N, V, D)`` outputs in index order with the labels the
    dataset returned (the fine-tune protocol passes ``forward=classifier`` to get ``(N, V, classes)`` logits).
    An unreadable video is left out (the dataset does not replace it by another one, as pretraining's does) and
    listed in ``skipped`` and ``bad_files``.
    """
    check_clip_settings(data)
    short_side = int(data.short_side) or int(data.crop_size)  # eval crops resize to crop_size anyway: decode small
    dataset = dataset_from_index(data, index, spec, seed=seed, short_side=short_side, replace_unreadable=False)
    loader = DataLoader(dataset, batch_size=int(data.batch_size), shuffle=False, num_workers=int(data.num_workers),
                        pin_memory=device.type == "cuda", collate_fn=collate_readable)
    encoder = encoder.to(device).eval()
    forward = forward or encoder.forward_features
    autocast = (torch.autocast("cuda", dtype=torch.bfloat16) if device.type == "cuda" else contextlib.nullcontext())
    feats, labels, kept = [], [], []
    with torch.inference_mode():
        for batch in (tqdm(loader, desc=desc, leave=False) if progress else loader):
            if batch is None:  # every video of this batch was unreadable
                continue
            views = torch.stack(batch["video"], dim=1)  # (B, V, C, T, H, W)
            with autocast:
                feats.append(forward_distinct_views(views, forward, device, chunk=int(data.batch_size) * 4))
            labels.append(torch.as_tensor(batch["label"]).long())
            kept.append(torch.as_tensor(batch["index"]).long())
    order, skipped = left_out(index, torch.cat(kept) if kept else torch.zeros(0, dtype=torch.long), desc)
    return CachedFeatures(torch.cat(feats)[order], torch.cat(labels)[order], list(index.class_names), skipped,
                          tuple(bad_files(dataset)))


def forward_distinct_views(views: torch.Tensor, forward: Callable[[torch.Tensor], torch.Tensor],
                           device: torch.device, chunk: int = 64) -> torch.Tensor:
    """``(B, V, C, T, H, W)`` views -> ``(B, V, D)`` outputs of ``forward``, in float32 on the CPU.

    A view equal to the one before it (the 3 crops of a square frame resized to the crop size are the
    same pixels) has the same output in eval mode, so the network only runs on distinct views, ``chunk``
    clips at a time (bounding activation memory).
    """
    b, v = views.shape[:2]
    repeat = torch.zeros(b, v, dtype=torch.bool)
    repeat[:, 1:] = (views[:, 1:] == views[:, :-1]).flatten(2).all(dim=2)
    distinct = views.flatten(0, 1)[~repeat.flatten()]
    out = torch.cat([forward(c.to(device, non_blocking=True)).float().cpu() for c in distinct.split(chunk)])
    source = torch.cumsum(~repeat.flatten(), 0) - 1  # each view -> the row of its distinct view
    return out[source].view(b, v, -1)


def cached_features(cfg: Any, encoder: torch.nn.Module, encoder_key: tuple, split: str, split_id: int,
                    spec: Any, view_key: tuple, device: torch.device) -> CachedFeatures:
    """``extract_features`` through the in-memory cache (LRU of ``_CACHE_SIZE`` entries)."""
    data = cfg.data
    # the synthetic sets' sizes pick the cached dataset; the factor dataset's labels are those of data.factor
    synthetic = str(data.synthetic) if data.format == "synthetic" else ""
    if data.format == "synthetic_factors":
        synthetic = f"{data.synthetic} factor={data.get('factor')}"
    key = (encoder_key, data.format, str(data.root), str(data.annotations), synthetic, split, split_id,
           str(getattr(data, "test_split", "test")),
           data.decoder, int(data.short_side), int(cfg.seed), view_key)
    if key in _FEATURE_CACHE:
        _FEATURE_CACHE.move_to_end(key)
        return _FEATURE_CACHE[key]
    index = read_split(data, split, split_id)
    result = extract_features(encoder, index, spec, data, seed=int(cfg.seed), device=device,
                              progress=bool(cfg.progress), desc=f"{split} features (split {split_id})")
    _FEATURE_CACHE[key] = result
    while len(_FEATURE_CACHE) > _CACHE_SIZE:
        _FEATURE_CACHE.popitem(last=False)
    return result


def clear_feature_cache() -> None:
    """Forget every cached extraction (tests; long-lived processes evaluating many encoders)."""
    _FEATURE_CACHE.clear()


def train_and_test_features(cfg: Any, encoder: torch.nn.Module, encoder_key: tuple, split_id: int,
                            device: torch.device) -> tuple[CachedFeatures, CachedFeatures]:
    """Training features (``linear.train_clips`` clips, center crop) and test features
    (``test.num_clips`` x ``test.num_crops`` views) of one split, at one clip geometry (``test.multi_view``, SVT's
    several geometries, is ``multi_view.multi_view_train_and_test_features``, which calls this once per geometry)."""
    d = cfg.data
    shape = (int(d.num_frames), int(d.frame_stride), int(d.crop_size))
    train_views = (int(cfg.linear.train_clips), 1)
    test_views = (int(cfg.test.num_clips), int(cfg.test.num_crops))
    norm = {"mean": list(d.mean or []) or None, "std": list(d.std or []) or None}
    norm_key = (tuple(norm["mean"] or ()), tuple(norm["std"] or ()))
    train = cached_features(cfg, encoder, encoder_key, "train", split_id, multi_view_spec(*train_views, *shape, **norm),
                            (*train_views, *shape, norm_key), device)
    test = cached_features(cfg, encoder, encoder_key, "test", split_id, multi_view_spec(*test_views, *shape, **norm),
                           (*test_views, *shape, norm_key), device)
    if train.class_names != test.class_names:
        raise UserError(f"data: train and test of split {split_id} list different classes "
                        f"({len(train.class_names)} vs {len(test.class_names)})")
    return train, test
