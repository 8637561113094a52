"""Small real media files for the rehearsal layouts, written with PyAV: H.264 / MPEG-4 Part 2 (Xvid-like) / VP9
video in mp4 / avi / mkv / webm with AAC / MP3 / Opus audio or none, and PCM WAV / FLAC audio files; plus the
broken files real downloads contain (truncated transfers, an HTML error page saved under a video name).

Pictures are cheap on purpose (a gradient background and a moving square, a few ms per frame): the rehearsal checks
that layouts, readers, samplers, decoders and recipes fit together, not what a network learns from them.
"""
from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import numpy as np

# codec options that keep encoding fast (the files are tiny and short)
_VIDEO_OPTIONS = {"libx264": {"preset": "ultrafast", "crf": "30"},
                  "libvpx-vp9": {"deadline": "realtime", "cpu-used": "8", "row-mt": "0"},
                  "mpeg4": {}}
_AUDIO_FORMAT = {"aac": "fltp", "libmp3lame": "fltp", "libopus": "flt", "flac": "s16", "pcm_s16le": "s16"}


def frames_for(width: int, height: int, count: int, seed: int) -> np.ndarray:
    """``(count, height, width, 3)`` uint8: a per-video gradient with a square that moves across it."""
    rng = np.random.default_rng(seed)
    low, high = rng.integers(0, 256, size=3), rng.integers(0, 256, size=3)
    ramp = np.linspace(0.0, 1.0, width, dtype=np.float32)[None, :, None]
    background = (low + (high - low) * ramp).astype(np.uint8)
    background = np.broadcast_to(background, (height, width, 3))
    colour = rng.integers(0, 256, size=3).astype(np.uint8)
    side = max(4, min(width, height) // 4)
    y0 = int(rng.integers(0, height - side + 1))
    out = np.empty((count, height, width, 3), dtype=np.uint8)
    for t in range(count):
        out[t] = background
        x = int((width - side) * t / max(1, count - 1))
        out[t, y0:y0 + side, x:x + side] = colour
    return out


def tone(seconds: float, rate: int, seed: int) -> np.ndarray:
    """``(samples,)`` float32 in [-1, 1]: a per-file tone plus a little noise."""
    rng = np.random.default_rng(seed)
    t = np.arange(int(round(seconds * rate)), dtype=np.float32) / rate
    wave = 0.4 * np.sin(2 * np.pi * float(rng.uniform(150, 1200)) * t) + 0.05 * rng.standard_normal(t.size)
    return np.clip(wave, -1, 1).astype(np.float32)


def _encode_audio(container, stream, wave: np.ndarray, rate: int, layout: str = "mono") -> None:
    import av

    fmt = _AUDIO_FORMAT[stream.codec_context.name] if stream.codec_context.name in _AUDIO_FORMAT else "fltp"
    size = stream.codec_context.frame_size or 1024
    data = wave if fmt in ("fltp", "flt") else (wave * 32767).astype(np.int16)
    for start in range(0, data.size, size):
        chunk = data[start:start + size][None, :]
        frame = av.AudioFrame.from_ndarray(np.ascontiguousarray(chunk), format=fmt, layout=layout)
        frame.sample_rate, frame.pts = rate, start
        container.mux(stream.encode(frame))
    container.mux(stream.encode(None))


def write_video(path: str | Path, *, width: int, height: int, fps: float, seconds: float, seed: int,
                codec: str = "libx264", audio: str | None = "aac", audio_rate: int = 44100,
                codec_tag: str | None = None) -> Path:
    """A ``seconds`` long ``width x height`` video at ``fps`` (29.97 is written as 30000/1001) with an
    ``audio`` track (``aac``, ``libmp3lame``, ``libopus``) or none. The container comes from the suffix.

    libvpx is written in a fresh process when decord is loaded: decord's bundled FFmpeg libraries make PyAV's libvpx
    encoders fail to open (``avcodec_open2("libvpx-vp9") returned 22``; docs/reliability.md), and earlier tests of
    the suite import decord."""
    import sys

    if codec.startswith("libvpx") and "decord" in sys.modules:
        return _write_in_fresh_process(path, width=width, height=height, fps=fps, seconds=seconds, seed=seed,
                                       codec=codec, audio=audio, audio_rate=audio_rate, codec_tag=codec_tag)
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    rate = Fraction(30000, 1001) if abs(fps - 29.97) < 1e-6 else Fraction(fps).limit_denominator(1001)
    count = max(2, int(round(seconds * float(rate))))
    with av.open(str(path), "w") as container:
        video = container.add_stream(codec, rate=rate, options=dict(_VIDEO_OPTIONS.get(codec, {})))
        video.width, video.height, video.pix_fmt = width, height, "yuv420p"
        video.gop_size = max(1, int(round(float(rate))))
        video.codec_context.thread_count = 1
        if codec == "mpeg4":
            video.bit_rate = 300_000
        if codec_tag:
            video.codec_context.codec_tag = codec_tag
        sound = None
        if audio:
            audio_rate = 48000 if audio == "libopus" else audio_rate
            sound = container.add_stream(audio, rate=audio_rate)
            sound.layout = "mono"
        for array in frames_for(width, height, count, seed):
            container.mux(video.encode(av.VideoFrame.from_ndarray(array, format="rgb24")))
        container.mux(video.encode(None))
        if sound is not None:
            _encode_audio(container, sound, tone(count / float(rate), audio_rate, seed), audio_rate)
    return path


def _write_in_fresh_process(path: str | Path, **kwargs) -> Path:
    import json
    import subprocess
    import sys

    subprocess.run([sys.executable, __file__, str(path), json.dumps(kwargs)], check=True, capture_output=True,
                   timeout=120)
    return Path(path)


def write_audio(path: str | Path, *, seconds: float, rate: int, seed: int) -> Path:
    """Mono 16-bit audio: PCM in ``.wav``, FLAC in ``.flac`` (the container and codec follow the suffix)."""
    import av

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    codec = "flac" if path.suffix.lower() == ".flac" else "pcm_s16le"
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=rate)
        stream.layout = "mono"
        stream.format = "s16"
        _encode_audio(container, stream, tone(seconds, rate, seed), rate)
    return path


def truncate(path: str | Path, keep: float = 0.35) -> Path:
    """Cut a written file to ``keep`` of its bytes: an interrupted download."""
    path = Path(path)
    data = path.read_bytes()
    path.write_bytes(data[: max(16, int(len(data) * keep))])
    return path


def write_html_error_page(path: str | Path) -> Path:
    """What a failed YouTube download leaves under a video's name: an HTML page."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("<!DOCTYPE html><html><head><title>Video unavailable</title></head>"
                    "<body>This video is no longer available.</body></html>\n", encoding="utf-8")
    return path


if __name__ == "__main__":  # ``python media.py PATH JSON``: write_video in this fresh process (see write_video)
    import json
    import sys

    write_video(sys.argv[1], **json.loads(sys.argv[2]))
