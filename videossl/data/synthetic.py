"""Procedural, seeded, Kinetics-like video+audio dataset written as real MP4 files.

(Renderer under construction: this first version exposes the MP4 writer used by the test fixtures.)
"""
from __future__ import annotations

from pathlib import Path

import numpy as np


def write_video(
    path: str | Path,
    frames: np.ndarray,
    fps: float,
    *,
    audio: np.ndarray | None = None,
    sample_rate: int = 16000,
    codec: str = "libx264",
    pix_fmt: str = "yuv420p",
    gop: int | None = None,
    crf: int | None = 23,
) -> Path:
    """Write ``frames`` (uint8 ``(T, H, W, C)`` RGB, or ``(T, H, W)`` gray) as a video with PyAV.

    audio: optional float ``(samples,)`` or ``(1, samples)`` mono waveform in [-1, 1], encoded as AAC
    at ``sample_rate`` (the container then holds a video and an audio stream on the same clock).
    codec / pix_fmt: libx264 needs even sizes with yuv420p; use ``yuv444p`` for odd sizes, or
    ``ffv1`` + ``gray`` in ``.mkv`` for true grayscale. gop: keyframe interval in frames.
    """
    import av

    path = Path(path)
    frames = np.asarray(frames, dtype=np.uint8)
    gray_input = frames.ndim == 3
    if frames.ndim not in (3, 4) or len(frames) == 0:
        raise ValueError(f"{path}: frames must be (T, H, W[, C]) with T >= 1, got {frames.shape}")
    height, width = frames.shape[1:3]
    # PyAV wants a Fraction-like rate; integer fps is the common case and keeps the time base exact.
    rate = int(fps) if float(fps).is_integer() else fps
    from fractions import Fraction

    options = {} if crf is None or codec != "libx264" else {"crf": str(crf)}
    # faststart: the index (moov) goes first, so a truncated file still opens and shows as truncated
    muxer_options = {"movflags": "faststart"} if path.suffix.lower() in (".mp4", ".mov", ".m4v") else {}
    with av.open(str(path), "w", options=muxer_options) as container:
        video = container.add_stream(codec, rate=Fraction(rate).limit_denominator(1001), options=options)
        video.width, video.height, video.pix_fmt = width, height, pix_fmt
        if gop is not None:
            video.gop_size = int(gop)
        audio_stream = None
        if audio is not None:
            audio_stream = container.add_stream("aac", rate=sample_rate)
            audio_stream.layout = "mono"
        for frame_array in frames:
            fmt = "gray" if gray_input else "rgb24"
            frame = av.VideoFrame.from_ndarray(frame_array, format=fmt)
            container.mux(video.encode(frame))
        container.mux(video.encode())
        if audio_stream is not None:
            _encode_audio(container, audio_stream, np.asarray(audio, dtype=np.float32).reshape(-1), sample_rate)
    return path


def _encode_audio(container, stream, wave: np.ndarray, sample_rate: int) -> None:
    """AAC encoders take fixed-size frames (1024 samples); the last one may be shorter."""
    import av

    chunk = stream.codec_context.frame_size or 1024
    wave = np.clip(wave, -1.0, 1.0)
    for start in range(0, len(wave), chunk):
        piece = wave[start : start + chunk][None, :]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(piece), format="fltp", layout="mono")
        frame.sample_rate = sample_rate
        frame.pts = start
        container.mux(stream.encode(frame))
    container.mux(stream.encode())
