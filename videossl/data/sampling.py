"""Clip samplers: which frames (video) and time ranges (audio) each view of a sample takes.

A sampler sees only the metadata of one video and a seeded random generator, and returns every view
the method needs for that sample at once, so the dataset can decode the union of their frames in one
call (never decode the same file twice for one sample). The pattern follows pytorchvideo's small
``ClipSampler`` ABC returning a NamedTuple.

Conventions shared by every sampler here:

- Clips are ``num_frames`` frames taken every ``stride`` frames of the FILE (its native frame rate,
  as in SlowFast's ``sampling_rate``); audio windows and durations are in seconds on the video clock.
  Frame indices index the file; the annotated segment ``[meta.start, meta.end)`` (seconds) is
  converted with ``meta.fps`` and every index stays inside it.
- Short videos PAD BY REPEATING THE LAST FRAME: a view longer than the segment starts at the
  segment's first frame and indices past its end repeat the last frame. We never loop, so time never
  jumps backwards inside a clip (it matters for arrow-of-time and order tasks). A 1-frame video gives
  clips of one repeated frame; nothing raises.
- Audio windows keep their length: shifted to lie inside the file when they fit, otherwise they start
  at 0 and the dataset pads the decoded waveform with silence to the requested length.
- All randomness comes from the ``rng`` argument (``numpy.random.Generator``), so a sample is a pure
  function of (meta, rng seed).
"""
from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, NamedTuple

import numpy as np


class VideoMeta(NamedTuple):
    """What a sampler may know about a video: from a cheap metadata probe, no decode."""

    num_frames: int
    fps: float
    duration: float  # seconds
    height: int
    width: int
    has_audio: bool
    start: float = 0.0  # the annotated segment inside the file (seconds); end=None means the whole file
    end: float | None = None


class ViewRequest(NamedTuple):
    """One view of a sample.

    name: unique within the sample, e.g. ``"clip0"``, ``"global1"``, ``"local3"``, ``"audio0"``.
    modality: ``"video"`` or ``"audio"``.
    frame_indices: video views: indices into the decoded video file (length = the view's T).
    time_range: audio views: ``(start_s, end_s)`` on the video clock.
    transform: key into the method's per-view transform dict (``"global"``, ``"local"``, ``"clip"``...).
    """

    name: str
    modality: str
    frame_indices: tuple[int, ...] | None = None
    time_range: tuple[float, float] | None = None
    transform: str = "clip"


class SampledViews(NamedTuple):
    """Every view of one sample plus the method's targets (e.g. ``{"order_label": 3}``)."""

    views: list[ViewRequest]
    targets: dict[str, Any]


class ClipSampler(ABC):
    """Chooses all views of one sample. Subclasses are small and stateless apart from their settings."""

    @abstractmethod
    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        """Return the views for one video; must never fail on short videos (loop or pad, documented)."""


class ViewSpec(NamedTuple):
    """What a method declares it needs from the data pipeline (``Method.views()`` returns one).

    sampler: picks every view of a sample (frames / time ranges) from one metadata probe.
    transforms: ``{ViewRequest.transform: callable}``. Video callables take the decoded uint8
    ``(T, H, W, C)`` frames of one view and return float ``(C, T, H, W)``; audio callables take a float
    ``(1, samples)`` waveform and return ``(1, samples)`` or log-mel ``(1, n_mels, frames)``.
    audio_rate: sample rate audio views are decoded at (Hz); ``None`` when the method needs no audio.
    device_transforms: with ``data.gpu_augment``, the workers only crop and flip (``build_video_transform("crop")``)
    and these batched augmentations (colour, blur, solarize, normalisation) run on the training device.
    """

    sampler: ClipSampler
    transforms: dict[str, Any]
    audio_rate: int | None = None
    # Optional second stage run by the engine on the device, one callable per video view in batch order:
    # ``(B, C, T, H, W)`` float in [0, 1] -> augmented, normalised batch (``data.gpu_augment``).
    device_transforms: tuple[Any, ...] | None = None


# ----------------------------------------------------------------------------------------------------
# Frame arithmetic shared by every sampler
# ----------------------------------------------------------------------------------------------------


def segment_frames(meta: VideoMeta) -> tuple[int, int]:
    """The annotated segment as frame indices ``[first, stop)`` into the file, at least one frame long."""
    total = max(int(meta.num_frames), 1)
    fps = meta.fps if meta.fps and meta.fps > 0 else 1.0
    first = min(max(int(round(meta.start * fps)), 0), total - 1)
    stop = total if meta.end is None else min(int(round(meta.end * fps)), total)
    return first, max(stop, first + 1)


def clip_span(num_frames: int, stride: int) -> int:
    """Frames a clip of ``num_frames`` taken every ``stride`` frames covers in the file."""
    return (num_frames - 1) * stride + 1


def clip_indices(start: int, num_frames: int, stride: int, first: int, stop: int) -> tuple[int, ...]:
    """``num_frames`` indices from ``start`` every ``stride``; past the segment they repeat its last frame."""
    idx = start + stride * np.arange(num_frames)
    return tuple(int(i) for i in np.clip(idx, first, stop - 1))


def random_clip_start(first: int, stop: int, span: int, rng: np.random.Generator) -> int:
    """A uniformly random start so the clip fits in ``[first, stop)``; ``first`` when it cannot fit."""
    return int(rng.integers(first, max(first, stop - span) + 1))


def random_clip(meta: VideoMeta, num_frames: int, stride: int, rng: np.random.Generator) -> tuple[int, ...]:
    """One clip at a uniformly random time inside the annotated segment."""
    first, stop = segment_frames(meta)
    start = random_clip_start(first, stop, clip_span(num_frames, stride), rng)
    return clip_indices(start, num_frames, stride, first, stop)


def frames_to_time(meta: VideoMeta, indices: tuple[int, ...]) -> tuple[float, float]:
    """The time range ``(start_s, end_s)`` a run of frames covers on the video clock."""
    fps = meta.fps if meta.fps and meta.fps > 0 else 1.0
    return indices[0] / fps, (indices[-1] + 1) / fps


def audio_window(meta: VideoMeta, center_s: float, seconds: float) -> tuple[float, float]:
    """A ``seconds`` long window centred on ``center_s``, shifted to stay inside the file when it fits.

    When the file is shorter than the window the range starts at 0 and runs past the end; the dataset
    pads the decoded audio with silence to exactly ``seconds`` (see the module docstring).
    """
    start = center_s - seconds / 2
    start = min(start, max(meta.duration, seconds) - seconds)
    start = max(start, 0.0)
    return float(start), float(start + seconds)


def video_view(name: str, indices: tuple[int, ...], transform: str) -> ViewRequest:
    return ViewRequest(name=name, modality="video", frame_indices=tuple(indices), transform=transform)


def audio_view(name: str, time_range: tuple[float, float], transform: str = "audio") -> ViewRequest:
    return ViewRequest(name=name, modality="audio", time_range=time_range, transform=transform)


# ----------------------------------------------------------------------------------------------------
# One clip / several clips for supervised training and evaluation
# ----------------------------------------------------------------------------------------------------


class RandomClipSampler(ClipSampler):
    """One clip of ``num_frames`` frames taken every ``stride`` frames, at a uniformly random time.

    The usual fine-tuning sampler and the MAE (Tong et al., 2022, VideoMAE: 16 frames, stride 4) view.
    """

    def __init__(self, num_frames: int = 16, stride: int = 4, transform: str = "clip"):
        _check_positive(num_frames=num_frames, stride=stride)
        self.num_frames, self.stride, self.transform = num_frames, stride, transform

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        indices = random_clip(meta, self.num_frames, self.stride, rng)
        return SampledViews([video_view("clip0", indices, self.transform)], {})


class UniformClipSampler(ClipSampler):
    """``num_frames`` frames spread evenly over the whole segment (TSN-style, Wang et al., 2016).

    Deterministic (the rng is unused): the centre frame of each of ``num_frames`` equal chunks.
    """

    def __init__(self, num_frames: int = 8, transform: str = "clip"):
        _check_positive(num_frames=num_frames)
        self.num_frames, self.transform = num_frames, transform

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        first, stop = segment_frames(meta)
        chunk = (stop - first) / self.num_frames
        indices = tuple(int(first + chunk * (i + 0.5)) for i in range(self.num_frames))
        return SampledViews([video_view("clip0", indices, self.transform)], {})


class MultiClipTestSampler(ClipSampler):
    """``num_clips`` clips evenly spaced over the segment, each seen through ``num_crops`` spatial crops.

    The standard test protocol (Feichtenhofer et al., 2019, SlowFast: 10 clips x 3 crops). Views are
    named ``clip{i}_crop{j}`` with transform ``crop{j}`` (``transform`` when ``num_crops == 1``), so a
    test-time transform dict such as ``build_test_transforms`` picks the left/centre/right crop. The
    rng is unused: evaluation is deterministic. Predictions are averaged over all views.
    """

    def __init__(self, num_clips: int = 10, num_frames: int = 16, stride: int = 4, num_crops: int = 1,
                 transform: str = "clip"):
        _check_positive(num_clips=num_clips, num_frames=num_frames, stride=stride, num_crops=num_crops)
        self.num_clips, self.num_frames, self.stride = num_clips, num_frames, stride
        self.num_crops, self.transform = num_crops, transform

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        first, stop = segment_frames(meta)
        span = clip_span(self.num_frames, self.stride)
        room = max(stop - span - first, 0)
        views = []
        for i in range(self.num_clips):
            # Clip i starts at the i-th of num_clips evenly spaced points (centred when there is 1 clip).
            offset = room * (i / (self.num_clips - 1) if self.num_clips > 1 else 0.5)
            indices = clip_indices(first + int(round(offset)), self.num_frames, self.stride, first, stop)
            for j in range(self.num_crops):
                key = self.transform if self.num_crops == 1 else f"crop{j}"
                views.append(video_view(f"clip{i}_crop{j}", indices, key))
        return SampledViews(views, {})


# ----------------------------------------------------------------------------------------------------
# Contrastive / distillation views
# ----------------------------------------------------------------------------------------------------


class RhoClipSampler(ClipSampler):
    """``rho`` clips of one video at independent random times (Feichtenhofer et al., CVPR 2021).

    "A Large-Scale Study on Unsupervised Spatiotemporal Representation Learning": positives are rho >= 2
    clips sampled uniformly over the whole video (their default: rho=2, 8 frames, stride 8 for a
    Slow-R50). ``max_distance_s`` optionally caps the time between clip starts (their Table 5 studies
    it). ``transforms`` names each clip's transform key, cycled (e.g. ``("view0", "view1")`` for BYOL's
    asymmetric augmentations); default: all ``"clip"``. ``num_frames=1`` gives the T=1 image case.
    """

    def __init__(self, rho: int = 2, num_frames: int = 8, stride: int = 8, max_distance_s: float | None = None,
                 transforms: tuple[str, ...] = ("clip",)):
        _check_positive(rho=rho, num_frames=num_frames, stride=stride)
        self.rho, self.num_frames, self.stride = rho, num_frames, stride
        self.max_distance_s, self.transforms = max_distance_s, tuple(transforms)

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        first, stop = segment_frames(meta)
        span = clip_span(self.num_frames, self.stride)
        lo, hi = first, max(first, stop - span)
        if self.max_distance_s is not None:
            # All starts fall in one random window of max_distance_s seconds.
            width = int(self.max_distance_s * (meta.fps or 1.0))
            lo = int(rng.integers(lo, max(lo, hi - width) + 1))
            hi = min(hi, lo + width)
        starts = rng.integers(lo, hi + 1, size=self.rho)
        views = [video_view(f"clip{k}", clip_indices(int(s), self.num_frames, self.stride, first, stop),
                            self.transforms[k % len(self.transforms)]) for k, s in enumerate(starts)]
        return SampledViews(views, {})


class FrameSampler(ClipSampler):
    """The T=1 case: ``num_views`` single frames (SimCLR-style two crops of one image or frame).

    ``same_frame=True`` takes every view from one random frame (two crops of one image); otherwise
    each view gets its own random frame. For an image file (1 frame) both give frame 0.
    """

    def __init__(self, num_views: int = 2, same_frame: bool = True, transforms: tuple[str, ...] = ("clip",)):
        _check_positive(num_views=num_views)
        self.num_views, self.same_frame, self.transforms = num_views, same_frame, tuple(transforms)

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        first, stop = segment_frames(meta)
        frames = rng.integers(first, stop, size=1 if self.same_frame else self.num_views)
        views = [video_view(f"view{k}", (int(frames[k % len(frames)]),), self.transforms[k % len(self.transforms)])
                 for k in range(self.num_views)]
        return SampledViews(views, {})


class SVTSampler(ClipSampler):
    """Global and local clips of one video (Ranasinghe et al., CVPR 2022, "Self-supervised Video Transformer").

    Global clip g has ``global_frames[g]`` frames every ``global_strides[g]`` frames (different spans and
    frame rates; transform ``"global"``, large crop). Local clip l has ``local_frames[l % len]`` frames
    (fewer) and a stride drawn from ``local_strides`` per sample (varied rates; transform ``"local"``,
    small crop). Frame counts are fixed per view position so batches collate; only the rate varies.
    SVT uses 2 global and 8 local views; the frame counts and rates here are configurable defaults.

    ``window_frames > 0`` samples as SVT's released code does (kahnchana/svt ``datasets/decoder.py``, ``decode``
    with ``temporal_aug``): every view comes from ONE random window of ``window_frames`` frames; global g spreads
    its frames evenly over the window less 5 frames at one end (even g: the start, odd g: the end; SVT:
    ``linspace(0, W - 5)`` and ``linspace(5, W)``), and each local spreads its frames evenly over a random
    sub-window of ``window_frames // 8`` frames (SVT: ``local_width = max_len // 8``). Strides are then unused.
    """

    def __init__(self, global_frames: tuple[int, ...] = (8, 8), global_strides: tuple[int, ...] = (4, 8),
                 num_local: int = 8, local_frames: tuple[int, ...] = (2, 4, 8),
                 local_strides: tuple[int, ...] = (2, 4, 8), window_frames: int = 0):
        if len(global_frames) != len(global_strides):
            raise ValueError("SVTSampler: global_frames and global_strides must have the same length")
        _check_positive(*global_frames, *global_strides, *local_frames, *local_strides)
        self.global_frames, self.global_strides = tuple(global_frames), tuple(global_strides)
        self.num_local, self.local_frames, self.local_strides = num_local, tuple(local_frames), tuple(local_strides)
        self.window_frames = int(window_frames)

    def _one_window(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        first, stop = segment_frames(meta)
        w = min(self.window_frames, stop - first)  # SVT: max_len is what was decoded, less for a short video
        start = random_clip_start(first, stop, w, rng)
        top = min(start + w - 1, stop - 1)

        def spread(a: int, b: int, n: int) -> tuple[int, ...]:  # SVT temporal_sampling: linspace, floor, clamp
            return tuple(int(i) for i in np.clip(np.linspace(a, b, n).astype(int), start, top))

        shift = min(5, w - 1)
        views = [video_view(f"global{g}", spread(start + shift * (g % 2), start + w - shift * (1 - g % 2), t), "global")
                 for g, t in enumerate(self.global_frames)]
        width = max(w // 8, 1)
        for k in range(self.num_local):
            a = int(rng.integers(start, start + max(w - width, 1)))  # SVT: randint(0, max_len - width - 1)
            views.append(video_view(f"local{k}", spread(a, a + width, self.local_frames[k % len(self.local_frames)]),
                                    "local"))
        return SampledViews(views, {})

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        if self.window_frames > 0:
            return self._one_window(meta, rng)
        views = [video_view(f"global{g}", random_clip(meta, t, s, rng), "global")
                 for g, (t, s) in enumerate(zip(self.global_frames, self.global_strides))]
        for k in range(self.num_local):
            t = self.local_frames[k % len(self.local_frames)]
            s = int(rng.choice(self.local_strides))
            views.append(video_view(f"local{k}", random_clip(meta, t, s, rng), "local"))
        return SampledViews(views, {})


class BraVeSampler(ClipSampler):
    """A narrow view and broad views of one video (Recasens et al., ICCV 2021, "Broaden Your Views").

    Narrow: ``narrow_frames`` dense frames (stride ``narrow_stride``), placed at a random time inside the
    broad span. Broad: ``broad_frames`` frames every ``broad_stride`` frames (a long span at a lower
    rate; BraVe's narrow view is 16 frames at 25 fps = 0.64 s, its broad views span several seconds).
    With ``broad_audio=True`` an audio view covers the broad span (BraVe's audio broad view);
    ``broad_video=False`` drops the broad video view (audio-only broad).
    """

    def __init__(self, narrow_frames: int = 16, narrow_stride: int = 1, broad_frames: int = 32,
                 broad_stride: int = 4, broad_video: bool = True, broad_audio: bool = False):
        _check_positive(narrow_frames=narrow_frames, narrow_stride=narrow_stride, broad_frames=broad_frames,
                        broad_stride=broad_stride)
        self.narrow_frames, self.narrow_stride = narrow_frames, narrow_stride
        self.broad_frames, self.broad_stride = broad_frames, broad_stride
        self.broad_video, self.broad_audio = broad_video, broad_audio

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        first, stop = segment_frames(meta)
        broad_span = clip_span(self.broad_frames, self.broad_stride)
        broad = clip_indices(random_clip_start(first, stop, broad_span, rng), self.broad_frames, self.broad_stride,
                             first, stop)
        narrow_span = clip_span(self.narrow_frames, self.narrow_stride)
        narrow_start = random_clip_start(broad[0], max(broad[-1] + 1, broad[0] + 1), narrow_span, rng)
        narrow = clip_indices(narrow_start, self.narrow_frames, self.narrow_stride, first, stop)
        views = [video_view("narrow", narrow, "narrow")]
        if self.broad_video:
            views.append(video_view("broad", broad, "broad"))
        if self.broad_audio:
            start_s = broad[0] / (meta.fps or 1.0)
            views.append(audio_view("broad_audio", (start_s, start_s + broad_span / (meta.fps or 1.0))))
        return SampledViews(views, {})


class ContiguousBlockSampler(ClipSampler):
    """``num_blocks`` contiguous blocks of ``block_frames`` frames as ONE view (Han et al., 2019, DPC).

    DPC: 8 blocks x 5 frames, stride 3. The blocks are returned as a single view of
    ``num_blocks * block_frames`` frames (transform ``"blocks"``) so one random draw gives every block
    the same spatial crop; the method reshapes ``(C, N*T, H, W) -> (C, N, T, H, W)``.
    """

    def __init__(self, num_blocks: int = 8, block_frames: int = 5, stride: int = 3):
        _check_positive(num_blocks=num_blocks, block_frames=block_frames, stride=stride)
        self.num_blocks, self.block_frames, self.stride = num_blocks, block_frames, stride

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        indices = random_clip(meta, self.num_blocks * self.block_frames, self.stride, rng)
        return SampledViews([video_view("blocks", indices, "blocks")], {"num_blocks": self.num_blocks})


class LongAudioSampler(ClipSampler):
    """One long audio window of ``seconds`` at a random time (CPC, van den Oord et al., 2018: 20480 samples
    = 1.28 s at 16 kHz). Needs only ``meta.duration`` (audio-only files have no frames)."""

    def __init__(self, seconds: float = 1.28):
        _check_positive(seconds=seconds)
        self.seconds = seconds

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        start = float(rng.uniform(0.0, max(meta.duration - self.seconds, 0.0)))
        return SampledViews([audio_view("audio0", (start, start + self.seconds))], {})


class AudioVisualSampler(ClipSampler):
    """A clip and the audio at the same time; optionally audio from another time as a hard negative.

    Positive (Arandjelovic & Zisserman, 2017, AVC; Korbar et al., 2018, AVTS): ``audio`` is a window of
    ``audio_seconds`` centred on the clip, shifted by ``audio_offset`` seconds (so tests and
    synchronisation tasks can make offset pairs). ``hard_negative=True`` adds ``audio_negative`` from
    the same video whose centre is at least ``min_negative_gap_s`` away from the positive window's
    (AVTS hard negatives; the positive as read, i.e. after it was shifted to stay inside the file, so
    a clip near either end does not get a negative that overlaps its own sound); when the video is too
    short for that gap it takes the farthest window and the target ``negative_gap_s`` reports the real
    gap. Other-video negatives come from the batch.
    """

    def __init__(self, num_frames: int = 16, stride: int = 2, audio_seconds: float = 1.0,
                 audio_offset: float = 0.0, hard_negative: bool = False, min_negative_gap_s: float = 0.5):
        _check_positive(num_frames=num_frames, stride=stride, audio_seconds=audio_seconds)
        self.num_frames, self.stride, self.audio_seconds = num_frames, stride, audio_seconds
        self.audio_offset, self.hard_negative, self.min_negative_gap_s = audio_offset, hard_negative, min_negative_gap_s

    def __call__(self, meta: VideoMeta, rng: np.random.Generator) -> SampledViews:
        indices = random_clip(meta, self.num_frames, self.stride, rng)
        clip_start, clip_end = frames_to_time(meta, indices)
        center = (clip_start + clip_end) / 2
        audio = audio_window(meta, center + self.audio_offset, self.audio_seconds)
        views = [video_view("clip0", indices, "clip"), audio_view("audio0", audio)]
        targets: dict[str, Any] = {}
        if self.hard_negative:
            half = self.audio_seconds / 2
            lo, hi = half, max(meta.duration - half, half)
            center = (audio[0] + audio[1]) / 2  # the positive window as read (clamped inside the file)
            far = [c for c in (center - self.min_negative_gap_s, center + self.min_negative_gap_s)]
            choices = [(lo, far[0]), (far[1], hi)]
            choices = [(a, b) for a, b in choices if b >= a]
            if choices:
                a, b = choices[int(rng.integers(len(choices)))]
                neg_center = float(rng.uniform(a, b))
            else:  # too short for the gap: the farthest end of the file
                neg_center = lo if abs(center - lo) > abs(center - hi) else hi
            views.append(audio_view("audio_negative", audio_window(meta, neg_center, self.audio_seconds)))
            targets["negative_gap_s"] = float(abs(neg_center - center))
        return SampledViews(views, targets)


def _check_positive(*values: float, **named: float) -> None:
    """Sampler settings are counts and durations: all must be > 0 (one clear line otherwise)."""
    for name, value in [*(("setting", v) for v in values), *named.items()]:
        if not value > 0:
            raise ValueError(f"sampler {name} must be > 0, got {value!r}")
