"""The factor dataset: procedural videos with three independent labels, appearance, motion and the arrow of time.

Every video shows one labelled object among random nuisances (background, 0-2 small drifting distractors, the
object's colours, size and orientation, sensor noise) and carries three labels, each drawn independently of the
others (balanced per split: each factor's labels are a round robin shuffled on its own):

* ``appearance`` (8): what the object is, a shape + texture family (``APPEARANCES``: cross, disc_halves,
  disc_stripes, ring_gap, square_checker, square_solid, star, triangle); 10-14 px radius at 64 px;
* ``motion`` (8): what it does (``MOTIONS``: bounce, fall_rest, orbit, pulse, slide, spin, split, zigzag), every
  dynamic damped (friction, restitution < 1, spiralling in, slowing spin, dying pulse);
* ``arrow`` (2): ``forward`` or ``reversed``: the video is rendered forward, then its frames and its audio are
  reversed. A fading trail (see :mod:`videossl.data.synthetic_factors_scenes`) and the damping make the arrow
  decidable for every motion, and one frame alone never decides it.

Videos are H.264 + AAC MP4s (``synthetic.write_video``), 64 px, 16 fps, 2-2.5 s by default, with audio that follows
the events. Generation reuses the synthetic dataset's machinery: per-video seeds, worker processes, the temporary
folder swapped in at the end and the locked cache (``synthetic.build_atomically`` / ``ensure_cached``).

Layout under ``root``::

    pool/pool_000123.mp4          unlabeled pretraining pool (labels recorded in labels.csv all the same)
    train/train_000012.mp4        labeled sets; file names carry no label
    test/test_000003.mp4
    labels.csv                    split,path,appearance,motion,arrow (paths relative to root)
    factors/<factor>/train.csv    path,label rows for the csv reader (paths ../../train/..., relative to the CSV)
    factors/<factor>/test.csv
    factors/<factor>/classes.txt  the factor's class names, in label order
    synthetic_factors.json        parameters, classes of each factor, counts (written last)

Using it (``data.format=synthetic_factors``; sizes from ``data.synthetic.*``, ``data.root`` empty: the cache). The
config's ``data.synthetic`` defaults are the synthetic set's (600 / 300 / 150 videos); the factor set's own
``DEFAULTS`` (600 / 800 / 400, the size its supervised ceilings were measured at, ``docs/benchmarks-factors.md``) need
``data.synthetic.num_train=800 data.synthetic.num_test=400``:

* pretraining reads ``data.split=pool`` (also ``train`` / ``test``) unlabeled, like ``data.format=synthetic``;
* evaluation picks the factor with ``data.factor``:
  ``videossl eval linear <encoder> data.format=synthetic_factors data.factor=motion``, which reads
  ``factors/motion/{train,test}.csv`` with the csv reader; the same as
  ``data.format=csv data.root=<dataset>/factors/motion`` on a folder made by ``make_synthetic_factors``.
"""
from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from ..errors import UserError
from .datasets import DatasetIndex, read_dataset
from .synthetic import _content_params, _run_jobs, build_atomically, ensure_cached, write_video
from .synthetic_factors_scenes import APPEARANCES, ARROWS, MOTIONS, SAMPLE_RATE, render_factor_video

FACTORS = ("appearance", "motion", "arrow")
CLASSES = {"appearance": APPEARANCES, "motion": MOTIONS, "arrow": ARROWS}
FORMAT_VERSION = 2  # bump when rendering or layout changes, so cached datasets are regenerated
INFO_FILE = "synthetic_factors.json"
DEFAULTS = dict(num_pool=600, num_train=800, num_test=400, size=64, fps=16, min_seconds=2.0, max_seconds=2.5, seed=0)
SPLITS = ((0, "pool", "num_pool"), (1, "train", "num_train"), (2, "test", "num_test"))

__all__ = ["FACTORS", "CLASSES", "APPEARANCES", "MOTIONS", "ARROWS", "DEFAULTS", "make_synthetic_factors",
           "ensure_synthetic_factors", "read_factors_info", "plan_labels", "render_job", "factor_root", "read_factor_split"]


class FactorJob(NamedTuple):
    relpath: str
    appearance: str
    motion: str
    arrow: str
    split_code: int  # 0 pool, 1 train, 2 test: part of the per-video seed
    index: int
    seconds: float


def video_seed(seed: int, split_code: int, index: int) -> np.random.SeedSequence:
    """The seed of one video; independent of its arrow, so forward and reversed twins share every draw."""
    return np.random.SeedSequence([seed, split_code, index, FORMAT_VERSION, 23])


def render_job(job: FactorJob, root: str, size: int, fps: int, seed: int) -> str:
    """Render and write one video (``root / job.relpath``); returns its relative path."""
    rng = np.random.default_rng(video_seed(seed, job.split_code, job.index))
    frames, audio = render_factor_video(job.appearance, job.motion, job.arrow, rng, size, fps, job.seconds)
    path = Path(root) / job.relpath
    path.parent.mkdir(parents=True, exist_ok=True)
    write_video(path, frames, fps, audio=audio, sample_rate=SAMPLE_RATE, gop=fps, threads=1)
    return job.relpath


def _balanced(rng: np.random.Generator, classes: tuple[str, ...], count: int) -> list[str]:
    labels = [classes[i % len(classes)] for i in range(count)]
    rng.shuffle(labels)
    return labels


def plan_labels(num_pool: int, num_train: int, num_test: int, fps: int, min_seconds: float, max_seconds: float,
                seed: int) -> list[FactorJob]:
    """Every video's path, three labels and length. Per split and factor the labels are balanced (a round robin)
    and shuffled by their own generator, so the three factors are independent draws."""
    jobs = []
    for split_code, split, key in SPLITS:
        count = {"num_pool": num_pool, "num_train": num_train, "num_test": num_test}[key]
        streams = np.random.SeedSequence([seed, 23, split_code]).spawn(len(FACTORS) + 1)
        labels = [_balanced(np.random.default_rng(s), CLASSES[f], count) for s, f in zip(streams, FACTORS)]
        lengths = np.random.default_rng(streams[-1]).uniform(min_seconds, max_seconds, count)
        for index in range(count):
            seconds = int(round(lengths[index] * fps)) / fps
            jobs.append(FactorJob(f"{split}/{split}_{index:06d}.mp4", labels[0][index], labels[1][index],
                                  labels[2][index], split_code, index, seconds))
    return jobs


def _write_labels(root: Path, jobs: list[FactorJob]) -> None:
    rows = ["split,path,appearance,motion,arrow\n"]
    rows += [f"{j.relpath.split('/')[0]},{j.relpath},{j.appearance},{j.motion},{j.arrow}\n" for j in jobs]
    (root / "labels.csv").write_text("".join(rows))
    for factor in FACTORS:
        folder = root / "factors" / factor
        folder.mkdir(parents=True)
        (folder / "classes.txt").write_text("".join(f"{name}\n" for name in CLASSES[factor]))
        for split in ("train", "test"):
            lines = ["path,label\n"] + [f"../../{j.relpath},{getattr(j, factor)}\n" for j in jobs
                                        if j.relpath.startswith(f"{split}/")]
            (folder / f"{split}.csv").write_text("".join(lines))


def _params(**sizes: Any) -> dict:
    unknown = set(sizes) - set(DEFAULTS)
    if unknown:
        raise UserError(f"synthetic_factors: unknown parameters {sorted(unknown)}; known: {sorted(DEFAULTS)}")
    full = {**DEFAULTS, **sizes}
    params = _content_params(*(full[k] for k in DEFAULTS))
    params["synthetic_format_version"] = params["format_version"]  # backgrounds and sound are the synthetic set's
    params["format_version"] = FORMAT_VERSION
    params["dataset"] = "synthetic_factors"
    return params


def make_synthetic_factors(root: str | os.PathLike, *, num_pool: int = DEFAULTS["num_pool"],
                           num_train: int = DEFAULTS["num_train"], num_test: int = DEFAULTS["num_test"],
                           size: int = DEFAULTS["size"], fps: int = DEFAULTS["fps"],
                           min_seconds: float = DEFAULTS["min_seconds"], max_seconds: float = DEFAULTS["max_seconds"],
                           seed: int = DEFAULTS["seed"], workers: int = 2, progress: bool = True) -> Path:
    """Write the factor dataset under ``root`` (layout in the module docstring) and return ``root``. Written in a
    temporary sibling folder swapped in at the end; an older factor dataset at ``root`` is replaced, any other
    non-empty folder refused."""
    sizes = dict(num_pool=num_pool, num_train=num_train, num_test=num_test, size=size, fps=fps,
                 min_seconds=min_seconds, max_seconds=max_seconds, seed=seed)
    params = _params(**sizes)

    def build(partial: Path) -> None:
        jobs = plan_labels(num_pool, num_train, num_test, fps, min_seconds, max_seconds, seed)
        _run_jobs(jobs, partial, size, fps, seed, workers, progress, render=render_job, desc="factor videos")
        _write_labels(partial, jobs)
        info = {"params": params, "factors": {f: list(CLASSES[f]) for f in FACTORS}, "sample_rate": SAMPLE_RATE,
                "counts": {"pool": num_pool, "train": num_train, "test": num_test}}
        (partial / INFO_FILE).write_text(json.dumps(info, indent=1))

    return build_atomically(root, INFO_FILE, "synthetic factor dataset", build)


def read_factors_info(root: str | os.PathLike) -> dict | None:
    """The ``synthetic_factors.json`` of a finished dataset, or None."""
    try:
        return json.loads((Path(root) / INFO_FILE).read_text())
    except (OSError, ValueError):
        return None


def ensure_synthetic_factors(root: str | os.PathLike | None = None, **sizes: Any) -> Path:
    """The factor dataset with these sizes (``DEFAULTS`` for the rest), generated only when missing or different.

    root: default ``$VIDEOSSL_CACHE/synthetic_factors-<hash of the parameters>``, generated under a lock so parallel
    processes render it once. ``workers`` / ``progress`` go to :func:`make_synthetic_factors` and are not part of the
    cache key.
    """
    run = {k: sizes.pop(k) for k in ("workers", "progress") if k in sizes}
    params = _params(**sizes)
    return ensure_cached(root, params, "synthetic_factors", read_factors_info,
                         lambda path: make_synthetic_factors(path, **sizes, **run))


def factor_root(data_cfg: Any, factor: str | None = None) -> Path:
    """The dataset of a ``data`` config section (``root``, sizes from ``data.synthetic``), ensured; with ``factor``,
    its ``factors/<factor>`` folder (the csv reader's root)."""
    s = data_cfg.synthetic
    root = ensure_synthetic_factors(data_cfg.root or None, num_pool=s.num_pool, num_train=s.num_train,
                                    num_test=s.num_test, size=s.size, seed=s.seed)
    if factor is None:
        return root
    if factor not in FACTORS:
        raise UserError(f"data.factor: '{factor}' is not a factor of data.format=synthetic_factors; "
                        f"choose one of {', '.join(FACTORS)}")
    return root / "factors" / factor


def read_factor_split(data_cfg: Any, split: str) -> DatasetIndex:
    """``split`` of a ``data.format=synthetic_factors`` config: with ``data.factor`` (evaluation's), the labelled
    ``train`` / ``test`` list of that factor (csv reader); a config without the field (pretraining's), the unlabeled
    ``pool`` / ``train`` / ``test`` folder."""
    factor = data_cfg.get("factor")
    if factor is None:
        if split not in ("pool", "train", "test"):
            raise UserError(f"data.split={split!r}: the synthetic_factors dataset has splits pool, train, test")
        return read_dataset("folder", str(factor_root(data_cfg) / split))
    if not factor:
        raise UserError(f"data.factor is empty: with data.format=synthetic_factors evaluation needs the factor to "
                        f"classify, one of {', '.join(FACTORS)}")
    if split not in ("train", "test"):
        raise UserError(f"data.split={split!r}: the synthetic_factors labels cover the train and test splits")
    return read_dataset("csv", str(factor_root(data_cfg, factor)), split=split)
