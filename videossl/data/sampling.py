"""Clip samplers: which frames (video) and time ranges (audio) each view of a sample takes.

A sampler sees only the metadata of one video and a seeded random generator, and returns every view
the method needs for that sample at once, so the dataset can decode the union of their frames in one
call (never decode the same file twice for one sample). The pattern follows pytorchvideo's small
``ClipSampler`` ABC returning a NamedTuple.
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
    """

    sampler: ClipSampler
    transforms: dict[str, Any]
    audio_rate: int | None = None
