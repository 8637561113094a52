"""Multi-view inference (SVT, Ranasinghe et al., CVPR 2022): features from clips of several frame counts,
frame rates and sizes, combined per video. A video ViT whose position tables are interpolated (TimeSformer,
``videossl.backbones.video_vit``) takes every geometry as it is.

``test.multi_view`` lists geometries as ``"TxSxC"`` strings (frames x stride x crop pixels), e.g.
``test.multi_view=[8x32x224,16x16x224,8x32x112]``; empty means one geometry, ``data.num_frames x
data.frame_stride x data.crop_size``. Each geometry is extracted with the usual ``test.num_clips x
test.num_crops`` views (and ``linear.train_clips`` training clips), so the views line up one to one:

- frozen protocols (linear, kNN, retrieval): ``test.multi_view_combine=concat`` joins the features of the
  geometries, ``(N, V, G * D)`` (SVT's combined features), ``mean`` averages them, ``(N, V, D)``;
- fine-tuning: the classifier trains on ``data.*`` clips; at test time its softmax scores are averaged over
  the views of every geometry (the multi-view test of SlowFast extended to several geometries).
"""
from __future__ import annotations

import dataclasses
import re
from typing import Any

import torch
from omegaconf import OmegaConf

from videossl.data.bad_files import bad_files
from videossl.errors import UserError

from .features import CachedFeatures, extract_features, train_and_test_features
from .views import multi_view_spec

COMBINE_CHOICES = ("concat", "mean")
_GEOMETRY = re.compile(r"\s*(\d+)\s*x\s*(\d+)\s*x\s*(\d+)\s*")


def parse_geometry(text: str) -> tuple[int, int, int]:
    """``"8x32x224"`` -> ``(frames=8, stride=32, crop=224)``; a clear ``UserError`` otherwise."""
    match = _GEOMETRY.fullmatch(str(text))
    if not match or min(int(g) for g in match.groups()) < 1:
        raise UserError(f"test.multi_view: '{text}' is not FRAMESxSTRIDExCROP with positive integers (e.g. 8x32x224)")
    return int(match[1]), int(match[2]), int(match[3])


def view_geometries(cfg: Any) -> list[tuple[int, int, int]]:
    """The ``(frames, stride, crop)`` geometries to extract: ``test.multi_view`` or the data's own one."""
    listed = list(getattr(cfg.test, "multi_view", None) or [])
    if not listed:
        d = cfg.data
        return [(int(d.num_frames), int(d.frame_stride), int(d.crop_size))]
    return [parse_geometry(g) for g in listed]


def validate_multi_view(test: Any) -> None:
    """Check ``test.multi_view`` / ``test.multi_view_combine`` (called by ``validate_eval_config``)."""
    for geometry in list(test.multi_view or []):
        parse_geometry(geometry)
    if test.multi_view_combine not in COMBINE_CHOICES:
        raise UserError(f"test.multi_view_combine: '{test.multi_view_combine}' is not one of {', '.join(COMBINE_CHOICES)}")


def with_geometry(cfg: Any, geometry: tuple[int, int, int]) -> Any:
    """A copy of the eval config whose data clip is ``geometry`` and whose ``test.multi_view`` is empty."""
    frames, stride, crop = geometry
    if dataclasses.is_dataclass(cfg):
        data = dataclasses.replace(cfg.data, num_frames=frames, frame_stride=stride, crop_size=crop)
        return dataclasses.replace(cfg, data=data, test=dataclasses.replace(cfg.test, multi_view=[]))
    return OmegaConf.merge(cfg, {"data": {"num_frames": frames, "frame_stride": stride, "crop_size": crop},
                                 "test": {"multi_view": []}})


def combine_features(parts: list[Any], how: str = "concat") -> Any:
    """``CachedFeatures`` of the same videos under several geometries -> one: features ``(N, V, D_g)`` joined on
    the last axis (``concat``) or averaged (``mean``). Videos left out of any part are left out of all."""
    first = parts[0]
    skipped = sorted({path for part in parts for path in part.skipped})
    if any(part.labels.shape != first.labels.shape or not torch.equal(part.labels, first.labels) for part in parts):
        raise UserError(f"test.multi_view: the geometries read different videos ({len(skipped)} unreadable in some); "
                        "fix or remove the unreadable videos listed by `videossl data stats`")
    stacked = [part.features for part in parts]
    if how == "concat":
        features = torch.cat(stacked, dim=-1)
    elif how == "mean":
        features = torch.stack(stacked).mean(dim=0)
    else:
        raise UserError(f"test.multi_view_combine: '{how}' is not one of {', '.join(COMBINE_CHOICES)}")
    return CachedFeatures(features, first.labels, first.class_names, tuple(skipped),
                          tuple(bad_files([part.bad_files for part in parts])))


def multi_view_train_and_test_features(cfg: Any, encoder: torch.nn.Module, encoder_key: tuple, split_id: int,
                                       device: torch.device) -> tuple[Any, Any]:
    """``train_and_test_features`` once per geometry of ``test.multi_view``, combined per video."""
    trains, tests = [], []
    for geometry in view_geometries(cfg):
        train, test = train_and_test_features(with_geometry(cfg, geometry), encoder, encoder_key, split_id, device)
        trains.append(train)
        tests.append(test)
    how = str(cfg.test.multi_view_combine)
    return combine_features(trains, how), combine_features(tests, how)


def multi_view_test_scores(cfg: Any, classifier: torch.nn.Module, index: Any, split_id: int,
                           device: torch.device) -> Any:
    """Fine-tuning's test: ``(N, G * V, classes)`` logits of every view of every geometry (``CachedFeatures``);
    the caller averages their softmax per video."""
    parts = []
    for geometry in view_geometries(cfg):
        g_cfg = with_geometry(cfg, geometry)
        spec = multi_view_spec(int(cfg.test.num_clips), int(cfg.test.num_crops), *geometry,
                               mean=cfg.data.get("mean"), std=cfg.data.get("std"))
        parts.append(extract_features(classifier, index, spec, g_cfg.data, seed=int(cfg.seed), device=device,
                                      progress=bool(cfg.progress), forward=classifier,
                                      desc=f"finetune test {'x'.join(map(str, geometry))} (split {split_id})"))
    if len(parts) == 1:
        return parts[0]
    joined = combine_features(parts, "concat")  # checks that every geometry read the same videos
    logits = torch.cat([part.features for part in parts], dim=1)
    return CachedFeatures(logits, joined.labels, joined.class_names, joined.skipped, joined.bad_files)
