"""``videossl show views RECIPE``: pictures of the views a method's sampler and augmentation produce.

The method is built from the recipe (``load_pretrain_config`` + ``build_method(cfg).views()``) and its
``ViewSpec`` runs through the real ``VideoDataset`` on a few videos, so the picture shows exactly what
training sees. The sampler is wrapped to record what it chose (view names, frame indices, time ranges
and targets such as an order label) for the labels. Clips are un-normalised for display.

Writes ``<out>.png`` (per video: a timeline of every view's span over the video, then one row per video
view with its frames, and audio views as log-mel spectrograms under them) and ``<out>.gif`` (every video
view playing side by side; view v shows its frame ``k * T_v / T_max`` at step k).
"""
from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import torch

from .. import resolve_recipe
from ..config import load_pretrain_config
from ..data.build import build_dataset
from ..data.sampling import ClipSampler, SampledViews, VideoMeta, ViewRequest, ViewSpec, frames_to_time
from ..errors import UserError
from ..methods import build_method
from ..transforms.audio import LogMel
from .render import (clip_to_frames, find_normalization, format_indices, label_image, mosaic, pick_columns,
                     resize_frames, save_gif)

log = logging.getLogger("videossl.viz")


class ShownView(NamedTuple):
    """One view as the dataset returned it: ``data`` is a video clip ``(C, T, H, W)`` or audio
    ``(1, samples)`` / ``(1, n_mels, frames)``; ``request`` is what the sampler asked for."""

    request: ViewRequest
    data: Any
    span_s: tuple[float, float]


class ShownSample(NamedTuple):
    index: int
    path: str
    label: str
    meta: VideoMeta
    views: list[ShownView]
    targets: dict[str, Any]


class RecordingSampler(ClipSampler):
    """Wraps a sampler and remembers the metadata and views of its last call (the dataset calls it once per
    sample attempt, so after ``dataset[i]`` this is what sample ``i`` was cut from)."""

    def __init__(self, inner: ClipSampler):
        self.inner = inner
        self.last: tuple[VideoMeta, SampledViews] | None = None

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        sampled = self.inner(meta, rng)
        self.last = (meta, sampled)
        return sampled


def build_method_views(cfg: Any) -> Any:
    """The method's ``ViewSpec``. The method is built on the ``meta`` device when it can be (a K400 recipe's
    Slow-R50 then costs no memory); ``views()`` runs on the CPU so audio transforms get real buffers."""
    try:
        with torch.device("meta"):
            method = build_method(cfg)
    except Exception:  # a method whose constructor needs real tensors
        method = build_method(cfg)
    return method.views()


def sample_views(cfg: Any, num_videos: int = 3, split: str | None = None, seed: int = 0, epoch: int = 0,
                 indices: list[int] | None = None) -> tuple[list[ShownSample], Any]:
    """Run the recipe's views on ``num_videos`` videos (evenly spread over ``split``) through ``VideoDataset``.

    Returns the samples with their recorded views and the ``ViewSpec`` (its transforms carry the
    normalisation to undo).
    """
    spec = build_method_views(cfg)
    recorder = RecordingSampler(spec.sampler)
    dataset = build_dataset(cfg.data, ViewSpec(recorder, spec.transforms, spec.audio_rate),
                            split=split or cfg.data.split, seed=seed)
    n = len(dataset)
    if indices is None:
        indices = sorted({int(round(v)) for v in np.linspace(0, n - 1, min(num_videos, n))})
    bad = [i for i in indices if not 0 <= i < n]
    if bad:
        raise UserError(f"--index {bad[0]}: the dataset has {n} videos")
    samples = []
    for i in indices:
        sample = dataset[(i, epoch)]
        meta, sampled = recorder.last
        video = iter(sample.get("video", []))
        audio = iter(sample.get("audio", []))
        views = []
        for request in sampled.views:
            if request.modality == "video":
                views.append(ShownView(request, next(video), frames_to_time(meta, request.frame_indices)))
            else:
                views.append(ShownView(request, next(audio), tuple(request.time_range)))
        entry = dataset.index.entries[sample["index"]]
        names = dataset.class_names
        label = names[entry.label] if 0 <= entry.label < len(names) else "unlabeled"
        samples.append(ShownSample(sample["index"], entry.path, label, meta, views, dict(sampled.targets)))
    return samples, spec


def split_blocks(samples: list[ShownSample]) -> list[ShownSample]:
    """DPC-style samples (target ``num_blocks``, one view of ``N * T`` frames) shown as N views ``blocks[k]``."""
    out = []
    for s in samples:
        n = int(s.targets.get("num_blocks", 0) or 0)
        views = []
        for v in s.views:
            t = len(v.request.frame_indices or ())
            if n > 1 and v.request.modality == "video" and t % n == 0 and t > n:
                per = t // n
                for k in range(n):
                    idx = v.request.frame_indices[k * per:(k + 1) * per]
                    req = v.request._replace(name=f"{v.request.name}[{k}]", frame_indices=idx)
                    span = (idx[0] / (s.meta.fps or 1.0), (idx[-1] + 1) / (s.meta.fps or 1.0))
                    views.append(ShownView(req, v.data[:, k * per:(k + 1) * per], span))
            else:
                views.append(v)
        out.append(s._replace(views=views))
    return out


def _spectrogram(view: ShownView, audio_rate: int | None) -> np.ndarray:
    """``(n_mels, frames)`` for display: a log-mel view as is, a raw waveform through ``LogMel``."""
    data = torch.as_tensor(view.data).float()
    if data.ndim == 3:
        return data[0].numpy()
    return LogMel(sample_rate=audio_rate or 16000)(data.reshape(1, -1))[0].numpy()


def _view_label(s: ShownSample, v: ShownView) -> str:
    r = v.request
    if r.modality == "audio":
        return f"{r.name} [{r.transform}]\naudio {v.span_s[0]:.2f}-{v.span_s[1]:.2f} s"
    c, t, h, w = v.data.shape
    return (f"{r.name} [{r.transform}]\n{t} fr, {h}x{w} px\nframes {format_indices(r.frame_indices, 8)}\n"
            f"{v.span_s[0]:.2f}-{v.span_s[1]:.2f} s")


def draw_views_png(samples: list[ShownSample], spec: Any, path: str | Path, max_frames: int = 8, title: str = "") -> Path:
    """The PNG grid: per video a header, a timeline of view spans, one row per view (frames or spectrogram)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows: list[tuple[str, Any, Any]] = []  # (kind, sample, view)
    for s in samples:
        rows += [("header", s, None), ("timeline", s, None)] + [("view", s, v) for v in s.views]
    heights = {"header": 0.5, "timeline": 0.9, "view": 1.0}
    ratios = [heights[k] for k, _, _ in rows]
    height = 1.15 * sum(ratios) + 0.6
    fig = plt.figure(figsize=(2.4 + 1.1 * max_frames, height), dpi=80)
    grid = fig.add_gridspec(len(rows), max_frames + 1, height_ratios=ratios, top=1 - 0.45 / height, bottom=0.01,
                            width_ratios=[2.2] + [1] * max_frames, hspace=0.35, wspace=0.05)
    colours = plt.get_cmap("tab10")
    for r, (kind, s, v) in enumerate(rows):
        if kind == "header":
            ax = fig.add_subplot(grid[r, :])
            ax.axis("off")
            targets = ", ".join(f"{k}={val}" for k, val in s.targets.items())
            ax.text(0, 0.45, f"video {s.index}: {s.label} ({Path(s.path).name}, {s.meta.duration:.2f} s, "
                            f"{s.meta.fps:g} fps)" + (f"   targets: {targets}" if targets else ""),
                    fontsize=10, weight="bold", va="bottom")
            ax.text(0, 0.3, "bars: each view's time span (s); ticks: the frames it takes", fontsize=7, va="top")
            continue
        if kind == "timeline":
            ax = fig.add_subplot(grid[r, 1:])
            for k, view in enumerate(s.views):
                colour = colours(k % 10)
                ax.plot(view.span_s, [k, k], color=colour, lw=4, solid_capstyle="butt")
                if view.request.modality == "video":
                    fps = s.meta.fps or 1.0
                    ax.plot([i / fps for i in view.request.frame_indices], [k] * len(view.request.frame_indices),
                            "|", color="black", ms=7)
            ax.set_yticks(range(len(s.views)), [view.request.name for view in s.views], fontsize=6)
            ax.set_ylim(len(s.views) - 0.5, -0.5)
            ax.set_xlim(0, max(s.meta.duration, max(view.span_s[1] for view in s.views)))
            ax.xaxis.tick_top()  # seconds above the bars, clear of the frame titles below
            ax.tick_params(axis="x", labelsize=7, pad=1)
            continue
        label_ax = fig.add_subplot(grid[r, 0])
        label_ax.axis("off")
        label_ax.text(1.0, 0.5, _view_label(s, v), fontsize=7, ha="right", va="center", family="monospace",
                      color=colours(s.views.index(v) % 10))
        if v.request.modality == "audio":
            ax = fig.add_subplot(grid[r, 1:])
            ax.imshow(_spectrogram(v, spec.audio_rate), origin="lower", aspect="auto", cmap="magma")
            ax.set_xticks([])
            ax.set_yticks([])
            continue
        frames = clip_to_frames(v.data, find_normalization(spec.transforms.get(v.request.transform)))
        for col, t in enumerate(pick_columns(len(frames), max_frames)):
            ax = fig.add_subplot(grid[r, col + 1])
            ax.imshow(frames[t])
            ax.set_xticks([])
            ax.set_yticks([])
            ax.set_title(f"f{v.request.frame_indices[t]}", fontsize=6, pad=1)
    if title:
        fig.suptitle(title, fontsize=11)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, bbox_inches="tight")
    plt.close(fig)
    return path


def draw_views_gif(samples: list[ShownSample], spec: Any, path: str | Path, cell: int = 96, fps: float = 4.0) -> Path:
    """The GIF: one row per video, one cell per video view, all views playing together."""
    largest = _largest(samples)
    rows = []  # per video: [(name, indices, frames resized)]
    for s in samples:
        row = []
        for v in s.views:
            if v.request.modality != "video":
                continue
            frames = clip_to_frames(v.data, find_normalization(spec.transforms.get(v.request.transform)))
            h, w = frames.shape[1:3]
            scale = cell / largest  # one scale for all views: a small local crop stays small
            size = (max(1, round(h * scale)), max(1, round(w * scale)))
            row.append((v.request.name, v.request.frame_indices, resize_frames(frames, size)))
        rows.append(row)
    steps = max((len(f) for row in rows for _, _, f in row), default=1)
    images = []
    for k in range(steps):
        cells = []
        for row in rows:
            line = []
            for name, indices, frames in row:
                t = min(len(frames) - 1, k * len(frames) // steps)
                line.append(label_image(_pad_to(frames[t], cell), f"{name} f{indices[t]}"))
            cells.append(line)
        images.append(mosaic(cells))
    return save_gif(images, path, fps=fps)


def _largest(samples: list[ShownSample]) -> int:
    return max((max(v.data.shape[-2:]) for s in samples for v in s.views if v.request.modality == "video"), default=1)


def _pad_to(image: np.ndarray, cell: int) -> np.ndarray:
    """Centre a smaller image on a ``cell x cell`` dark square so every GIF cell has the same size."""
    out = np.full((cell, cell, 3), 16, np.uint8)
    h, w = min(image.shape[0], cell), min(image.shape[1], cell)
    top, left = (cell - h) // 2, (cell - w) // 2
    out[top:top + h, left:left + w] = image[:h, :w]
    return out


def output_paths(out: str | Path, stem: str = "views") -> tuple[Path, Path]:
    """``--out x.png`` -> (x.png, x.gif); ``--out DIR`` -> (DIR/<stem>.png, DIR/<stem>.gif)."""
    out = Path(out)
    if out.suffix.lower() in (".png", ".gif"):
        return out.with_suffix(".png"), out.with_suffix(".gif")
    return out / f"{stem}.png", out / f"{stem}.gif"


# ----------------------------------------------------------------------------------------------- command


def add_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("recipe", help="recipe file or name in recipes/ (e.g. simclr_synthetic_tiny3d)")
    parser.add_argument("overrides", nargs="*", metavar="KEY=VALUE", help="recipe overrides, e.g. data.num_frames=4")
    parser.add_argument("--videos", type=int, default=3, help="how many videos, evenly spread over the split (3)")
    parser.add_argument("--index", type=int, action="append", default=None, help="show this dataset index (repeatable)")
    parser.add_argument("--split", default=None, help="dataset split (default: the recipe's data.split)")
    parser.add_argument("--max-frames", type=int, default=8, help="frames drawn per view in the PNG (8)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the random draws (as train.seed)")
    parser.add_argument("--epoch", type=int, default=0, help="epoch whose draws to show (0)")
    parser.add_argument("--out", default="runs/viz/views", help="output folder, or a .png path (GIF beside it)")
    parser.add_argument("--no-gif", action="store_true", help="write the PNG only")


def run(args: argparse.Namespace) -> int:
    torch.set_num_threads(1)
    if args.videos < 1 or args.max_frames < 1:
        raise UserError("--videos and --max-frames must be >= 1")
    recipe = resolve_recipe(args.recipe)
    cfg = load_pretrain_config(recipe, list(args.overrides))
    samples, spec = sample_views(cfg, args.videos, args.split, seed=args.seed, epoch=args.epoch, indices=args.index)
    samples = split_blocks(samples)
    png, gif = output_paths(args.out)
    title = f"{cfg.method.name} views ({recipe.stem}, {cfg.backbone.name}, epoch {args.epoch})"
    print(f"wrote {draw_views_png(samples, spec, png, args.max_frames, title)}")
    if not args.no_gif:
        print(f"wrote {draw_views_gif(samples, spec, gif)}")
    return 0
