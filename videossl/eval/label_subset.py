"""Low-shot training sets: a seeded fraction of each class's labelled training videos.

The semi-supervised evaluations of video SSL papers fine-tune on 1% / 10% of the labels (e.g. of Kinetics-400 or
UCF101); which videos were kept decides the number, so the subset is drawn per class (at least one video of every
class), from a seed the results record, and listed in a file beside the results. ``label_subset`` draws it;
``apply_label_fraction`` is what fine-tuning and the attentive probe call on their training index;
``label_fraction_of_features`` keeps the linear probe's rows of those videos (features extracted once, for all).
"""
from __future__ import annotations

import math
from collections import defaultdict
from pathlib import Path
from typing import Any

import numpy as np
import torch

from videossl.data.datasets import DatasetIndex
from videossl.files import write_text


def label_subset(index: DatasetIndex, fraction: float, seed: int) -> DatasetIndex:
    """``round(fraction * n_c)`` videos of each class ``c`` (at least 1, at most ``n_c``), drawn without replacement
    with ``numpy.random.default_rng(seed)``, class by class in label order; the kept entries stay in index order.

    The draw depends only on ``(seed, fraction)`` and the index's entries, so the same arguments give the same list on
    any machine. ``fraction >= 1`` returns ``index`` unchanged. Entries without a label (``label < 0``) are dropped.
    """
    if not 0.0 < fraction:
        raise ValueError(f"label fraction must be > 0, got {fraction}")
    if fraction >= 1.0:
        return index
    by_class: dict[int, list[int]] = defaultdict(list)
    for i, entry in enumerate(index.entries):
        if entry.label >= 0:
            by_class[int(entry.label)].append(i)
    rng = np.random.default_rng(seed)
    kept: list[int] = []
    for label in sorted(by_class):
        members = by_class[label]
        count = min(len(members), max(1, int(math.floor(fraction * len(members) + 0.5))))
        kept += [members[j] for j in rng.choice(len(members), size=count, replace=False)]
    return index._replace(entries=[index.entries[i] for i in sorted(kept)])


def write_label_subset(index: DatasetIndex, path: str | Path) -> Path:
    """One ``<path>\\t<label>\\t<class name>`` line per kept video, in index order."""
    names = index.class_names
    lines = [f"{e.path}\t{e.label}\t{names[e.label] if 0 <= e.label < len(names) else ''}\n" for e in index.entries]
    path = Path(path)
    write_text(path, "".join(lines))
    return path


def apply_label_fraction(index: DatasetIndex, settings: Any, run_seed: int, out_dir: str | Path,
                         split_id: int) -> tuple[DatasetIndex, dict | None]:
    """``settings.label_fraction`` of ``index`` per class (seed ``settings.label_seed``, else ``run_seed``), the list
    written to ``out_dir/label_subset.txt`` (``label_subset_split<N>.txt`` for splits 2 and 3). Returns the index and
    the result JSON's ``label_subset`` entry (``None`` when the fraction is 1: every video)."""
    fraction = float(getattr(settings, "label_fraction", 1.0) or 1.0)
    if fraction >= 1.0:
        return index, None
    seed = getattr(settings, "label_seed", None)
    seed = int(run_seed if seed is None else seed)
    subset = label_subset(index, fraction, seed)
    name = "label_subset.txt" if split_id == 1 else f"label_subset_split{split_id}.txt"
    path = write_label_subset(subset, Path(out_dir) / name)
    counts = np.bincount([e.label for e in subset.entries], minlength=len(index.class_names))
    labelled = sum(e.label >= 0 for e in index.entries)
    return subset, {"fraction": fraction, "seed": seed, "num_videos": len(subset.entries), "of": int(labelled),
                    "num_classes": int((counts > 0).sum()), "per_class_min": int(counts[counts > 0].min()),
                    "per_class_max": int(counts.max()), "file": str(path)}


def label_fraction_of_features(features: Any, index: DatasetIndex, settings: Any, run_seed: int, out_dir: str | Path,
                               split_id: int) -> tuple[Any, dict | None]:
    """The rows of ``features`` (``CachedFeatures`` of ``index``'s videos in index order, ``features.skipped`` left out)
    whose video ``apply_label_fraction`` keeps; the subset entry for the result JSON (``None``: every video)."""
    subset, info = apply_label_fraction(index, settings, run_seed, out_dir, split_id)
    if info is None:
        return features, None
    kept, skipped = {e.path for e in subset.entries}, set(features.skipped)
    rows = torch.tensor([e.path in kept for e in index.entries if e.path not in skipped], dtype=torch.bool)
    if rows.numel() != features.labels.numel():
        raise ValueError(f"label subset: {rows.numel()} listed readable videos for {features.labels.numel()} feature rows")
    return features._replace(features=features.features[rows], labels=features.labels[rows]), info
