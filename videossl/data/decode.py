"""Video decoders: frames at given indices and audio in a time range, from decord, PyAV or torchcodec.

Every backend answers the same three questions with the same conventions, so the dataset never needs to
know which one runs:

* ``probe(path) -> VideoMeta``: header metadata only (no decode), sanitised (absurd fps fixed, missing
  frame counts estimated). Cached per file (path, size, mtime) inside the decoder instance.
* ``frames(path, indices, short_side=None)``: uint8 ``(T, H, W, 3)`` RGB, one frame per requested index,
  in the order of ``indices`` (duplicates allowed; each distinct frame is decoded once). Frame ``i`` is
  the ``i``-th frame in presentation order. Indices are clamped to ``[0, num_frames - 1]``
  (keeping them in range is the sampler's job; clamping is only a safety net). ``short_side`` resizes
  inside the decoder (decord: reader width/height; PyAV: swscale in the RGB conversion; torchcodec:
  its decoder-native ``Resize``), keeping the aspect ratio.
* ``audio(path, start, end, sample_rate)``: float32 ``(1, round((end - start) * sample_rate))`` mono.
  Times are on the video clock (0 = the first video frame), so audio and frames line up even when the
  streams start at different timestamps. Outside the audio stream the result is zero-padded.
  Audio always goes through PyAV (torchcodec's ``AudioDecoder`` for the torchcodec backend).

Every failure is a :class:`DecodeError` whose message is ``"<path>: <reason>"``.

Decord notes: readers leak memory when kept open for long, so one reader is opened per ``frames`` call
and dropped right after. decord 0.6 also mis-sizes RGB frames for a few small frame sizes (e.g. 48x32
comes back with 4 "channels", and ``get_batch`` then fails); those calls fall back to PyAV.
"""
from __future__ import annotations

import math
import os
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import numpy as np
import torch

from videossl.data.sampling import VideoMeta
from videossl.errors import UserError

MAX_PLAUSIBLE_FPS = 1000.0  # above this the header is wrong (seen in files with broken time bases)
FALLBACK_FPS = 25.0  # used only when neither the header nor frames/duration give a usable rate
_PROBE_CACHE_SIZE = 4096


class DecodeError(Exception):
    """A file that cannot be decoded. ``str(e) == "<path>: <reason>"``."""

    def __init__(self, path: str | os.PathLike, reason: str):
        self.path = str(path)
        self.reason = reason
        super().__init__(f"{self.path}: {reason}")


def check_file(path: str | os.PathLike) -> Path:
    """Fail early with a clear reason for files that no decoder should even open."""
    path = Path(path)
    if not path.exists():
        raise DecodeError(path, "file not found")
    if path.is_dir():
        raise DecodeError(path, "is a directory, not a video file")
    if path.stat().st_size == 0:
        raise DecodeError(path, "zero-byte file")
    return path


def sanitize_fps(fps: float | None, num_frames: int, duration: float) -> float:
    """A usable frame rate: the header's if plausible, else frames/duration, else ``FALLBACK_FPS``."""
    if fps is not None and math.isfinite(fps) and 0 < fps <= MAX_PLAUSIBLE_FPS:
        return float(fps)
    if num_frames > 0 and duration > 0 and num_frames / duration <= MAX_PLAUSIBLE_FPS:
        return num_frames / duration
    return FALLBACK_FPS


def short_side_size(height: int, width: int, short_side: int | None) -> tuple[int, int]:
    """``(new_height, new_width)`` with the shorter side equal to ``short_side``, aspect kept."""
    if short_side is None:
        return height, width
    if short_side <= 0:
        raise ValueError(f"short_side must be positive, got {short_side}")
    if height <= width:
        return short_side, max(1, round(width * short_side / height))
    return max(1, round(height * short_side / width)), short_side


def clamp_indices(indices: Sequence[int], num_frames: int) -> np.ndarray:
    """Indices as int64, clamped to ``[0, num_frames - 1]`` (a safety net, not a sampling policy)."""
    array = np.asarray(list(indices), dtype=np.int64).reshape(-1)
    return np.clip(array, 0, max(num_frames - 1, 0))


def _open_pyav(path: Path):
    import av

    try:
        return av.open(str(path), metadata_errors="ignore")
    except Exception as error:  # av raises many FFmpegError subclasses; all mean "unreadable"
        raise DecodeError(path, f"not a readable video ({_reason(error)})") from None


def _reason(error: Exception) -> str:
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text.strip().splitlines()[0][:200]


def probe_with_pyav(path: str | os.PathLike) -> VideoMeta:
    """Header-only metadata of a video file via PyAV (no frame is decoded, except counting packets
    of containers that store no frame count and no duration)."""
    path = check_file(path)
    with _open_pyav(path) as container:
        if not container.streams.video:
            raise DecodeError(path, "no video stream")
        stream = container.streams.video[0]
        if stream.codec_context is None:  # FFmpeg found no decoder for the (corrupt or unknown) codec id
            raise DecodeError(path, "video stream has no usable codec (unknown or corrupt codec header)")
        height, width = stream.codec_context.height, stream.codec_context.width
        if height <= 0 or width <= 0:
            raise DecodeError(path, f"video stream has no frame size ({width}x{height})")
        rate = stream.average_rate or stream.base_rate or stream.guessed_rate
        header_fps = float(rate) if rate else None
        if stream.duration and stream.time_base:
            duration = float(stream.duration * stream.time_base)
        elif container.duration:
            duration = container.duration / 1_000_000  # container.duration is in AV_TIME_BASE (us)
        else:
            duration = 0.0
        num_frames = int(stream.frames or 0)
        if num_frames <= 0 and duration > 0 and header_fps:
            num_frames = max(1, round(duration * header_fps))
        if num_frames <= 0:  # no count, no duration: count video packets (demux only, cheap)
            num_frames = sum(1 for packet in container.demux(stream) if packet.size)
        if num_frames <= 0:
            raise DecodeError(path, "video stream has no frames")
        size = path.stat().st_size
        if num_frames > size:  # every frame takes at least a byte; decord aborts the process on such an index
            raise DecodeError(path, f"corrupt index: the header claims {num_frames} frames in a {size}-byte file")
        fps = sanitize_fps(header_fps, num_frames, duration)
        if duration <= 0:
            duration = num_frames / fps
        return VideoMeta(num_frames=num_frames, fps=fps, duration=duration, height=height, width=width,
                         has_audio=bool(container.streams.audio))


def _video_start_seconds(container) -> float:
    if not container.streams.video:
        return 0.0
    stream = container.streams.video[0]
    return float(stream.start_time * stream.time_base) if stream.start_time is not None else 0.0


def _fit_audio(wave: np.ndarray | torch.Tensor, wave_start: float, start: float, length: int,
               sample_rate: int) -> torch.Tensor:
    """Cut ``length`` samples beginning at ``start`` from ``wave`` (which begins at ``wave_start``
    seconds on the same clock), zero-padding whatever lies outside it. Returns ``(1, length)``."""
    wave = torch.as_tensor(np.asarray(wave, dtype=np.float32)).reshape(-1)
    out = torch.zeros(1, length, dtype=torch.float32)
    offset = round((start - wave_start) * sample_rate)  # where the request begins inside `wave`
    src_lo, src_hi = max(offset, 0), min(offset + length, wave.numel())
    if src_hi > src_lo:
        out[0, src_lo - offset : src_hi - offset] = wave[src_lo:src_hi]
    return out


def audio_with_pyav(path: str | os.PathLike, start: float, end: float, sample_rate: int) -> torch.Tensor:
    """Mono float32 ``(1, round((end - start) * sample_rate))`` audio between ``start`` and ``end``
    seconds of the video clock, resampled with PyAV's (libswresample) resampler; zero-padded outside."""
    import av

    path = check_file(path)
    length = max(0, round((end - start) * sample_rate))
    with _open_pyav(path) as container:
        if not container.streams.audio:
            raise DecodeError(path, "no audio stream")
        stream = container.streams.audio[0]
        clock = _video_start_seconds(container)
        t0, t1 = clock + start, clock + end
        if length == 0:
            return torch.zeros(1, 0)
        if t0 > 0.5:  # audio frames are all keyframes: seek a little before, then decode forward
            container.seek(int(max(t0 - 0.25, 0.0) / stream.time_base), stream=stream, backward=True)
        resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
        pieces, wave_start = [], None
        try:
            for frame in container.decode(stream):
                if frame.time is None:
                    continue
                if wave_start is None:
                    wave_start = float(frame.time)
                pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(frame)]
                if frame.time + frame.samples / frame.sample_rate >= t1 + 0.05:
                    break
            pieces += [f.to_ndarray().reshape(-1) for f in resampler.resample(None)]
        except av.error.FFmpegError as error:
            if wave_start is None:
                raise DecodeError(path, f"audio stream cannot be decoded ({_reason(error)})") from None
            # a truncated tail: keep what was decoded; the rest is zero-padded below
        if wave_start is None:
            return torch.zeros(1, length)
        wave = np.concatenate(pieces) if pieces else np.zeros(0, np.float32)
        return _fit_audio(wave, wave_start, t0, length, sample_rate)


class Decoder(ABC):
    """One decoding backend. Instances are cheap, hold no open files, and are safe to pickle into
    DataLoader workers. ``threads``: FFmpeg threads per open file (1 suits multi-worker loaders)."""

    name: str = ""

    def __init__(self, threads: int = 1):
        self.threads = int(threads)
        self._probe_cache: OrderedDict[tuple, VideoMeta] = OrderedDict()

    @classmethod
    def is_available(cls) -> bool:
        """Whether the backend imports and its native libraries load."""
        return True

    def probe(self, path: str | os.PathLike) -> VideoMeta:
        """Header metadata (see :func:`probe_with_pyav`), cached by (path, size, mtime)."""
        path = check_file(path)
        stat = path.stat()
        key = (str(path), stat.st_size, stat.st_mtime_ns)
        meta = self._probe_cache.get(key)
        if meta is None:
            meta = self._probe(path)
            self._probe_cache[key] = meta
            if len(self._probe_cache) > _PROBE_CACHE_SIZE:
                self._probe_cache.popitem(last=False)
        return meta

    def _probe(self, path: Path) -> VideoMeta:
        return probe_with_pyav(path)

    def frames(self, path: str | os.PathLike, indices: Sequence[int], short_side: int | None = None) -> torch.Tensor:
        """uint8 ``(T, H, W, 3)`` RGB frames at ``indices`` (in that order), optionally resized so the
        shorter side is ``short_side``."""
        meta = self.probe(path)
        wanted = clamp_indices(indices, meta.num_frames)
        if wanted.size == 0:
            height, width = short_side_size(meta.height, meta.width, short_side)
            return torch.zeros(0, height, width, 3, dtype=torch.uint8)
        unique, inverse = np.unique(wanted, return_inverse=True)  # decode each distinct frame once
        decoded = self._frames(Path(path), meta, unique, short_side)
        return decoded[torch.from_numpy(inverse.reshape(-1))]

    @abstractmethod
    def _frames(self, path: Path, meta: VideoMeta, unique: np.ndarray, short_side: int | None) -> torch.Tensor:
        """Frames at sorted, distinct, in-range ``unique`` indices: uint8 ``(len(unique), H, W, 3)``."""

    def audio(self, path: str | os.PathLike, start: float, end: float, sample_rate: int) -> torch.Tensor:
        """float32 ``(1, round((end - start) * sample_rate))`` mono audio on the video clock."""
        return audio_with_pyav(path, start, end, sample_rate)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(threads={self.threads})"


class PyAVDecoder(Decoder):
    """PyAV (FFmpeg via Python bindings): seeks to the keyframe before the first wanted frame, decodes
    forward, and converts only the wanted frames to RGB (resizing inside the same swscale call)."""

    name = "pyav"

    def _frames(self, path, meta, unique, short_side):
        return frames_with_pyav(path, meta, unique, short_side, threads=self.threads)


def frames_with_pyav(path: Path, meta: VideoMeta, unique: np.ndarray, short_side: int | None,
                     threads: int = 1) -> torch.Tensor:
    """See :class:`PyAVDecoder`. ``unique``: sorted distinct in-range indices."""
    import av

    height, width = short_side_size(meta.height, meta.width, short_side)
    wanted = [int(i) for i in unique]
    with _open_pyav(path) as container:
        stream = container.streams.video[0]
        stream.codec_context.thread_count = threads
        time_base = float(stream.time_base) if stream.time_base else 1.0 / meta.fps
        origin = stream.start_time or 0
        if wanted[0] > 0:
            target = origin + wanted[0] / meta.fps / time_base
            container.seek(int(target), stream=stream, backward=True)
        out: dict[int, np.ndarray] = {}
        cache: list = [None, None]  # (frame index, rgb array) of the last conversion

        def rgb(frame, index: int) -> np.ndarray:
            if cache[0] != index:
                cache[:] = [index, frame.to_ndarray(format="rgb24", width=width, height=height)]
            return cache[1]

        position, previous, previous_index, count = 0, None, -1, 0
        try:
            for frame in container.decode(stream):
                count += 1
                # Presentation index from the timestamp; files without pts fall back to counting.
                index = round((frame.pts - origin) * time_base * meta.fps) if frame.pts is not None else count - 1
                while position < len(wanted) and wanted[position] < index:
                    if previous is None:  # a gap before the first decoded frame: use that frame
                        out[wanted[position]] = rgb(frame, index)
                    else:
                        out[wanted[position]] = rgb(previous, previous_index)
                    position += 1
                while position < len(wanted) and wanted[position] == index:
                    out[wanted[position]] = rgb(frame, index)
                    position += 1
                if position == len(wanted):
                    break
                previous, previous_index = frame, index
        except av.error.FFmpegError as error:
            if previous is None:
                raise DecodeError(path, f"video cannot be decoded ({_reason(error)})") from None
        if position < len(wanted):  # the stream ended before the last wanted index
            if previous is None:
                raise DecodeError(path, "no decodable video frames")
            if wanted[-1] - previous_index > _truncation_slack(meta.num_frames):
                raise DecodeError(path, f"truncated: video ends at frame {previous_index} of {meta.num_frames}")
            for index in wanted[position:]:
                out[index] = rgb(previous, previous_index)
    return torch.from_numpy(np.stack([out[i] for i in wanted]))


def _truncation_slack(num_frames: int) -> int:
    """Frame counts in headers are often off by a few frames; more missing than this is truncation."""
    return max(2, num_frames // 20)


class DecordDecoder(Decoder):
    """decord: frame-accurate random access with ``get_batch``; resizes with the reader's width/height.
    One reader per call (decord leaks memory in long-lived readers)."""

    name = "decord"

    @classmethod
    def is_available(cls) -> bool:
        try:
            import decord  # noqa: F401
        except Exception:
            return False
        return True

    def _frames(self, path, meta, unique, short_side):
        import decord

        height, width = short_side_size(meta.height, meta.width, short_side)
        size = {} if short_side is None else {"width": width, "height": height}
        try:
            reader = decord.VideoReader(str(path), ctx=decord.cpu(0), num_threads=self.threads, **size)
        except Exception as error:
            raise DecodeError(path, f"not a readable video ({_decord_reason(error)})") from None
        try:
            count = len(reader)
            if count <= 0:
                raise DecodeError(path, "no decodable video frames")
            if int(unique[-1]) - (count - 1) > _truncation_slack(meta.num_frames):
                raise DecodeError(path, f"truncated: video ends at frame {count - 1} of {meta.num_frames}")
            indices = np.minimum(unique, count - 1).tolist()
            try:
                batch = reader.get_batch(indices).asnumpy()
            except Exception as error:
                if "size must exactly match" in str(error):  # decord's RGB sizing bug, see module doc
                    return frames_with_pyav(path, meta, unique, short_side, self.threads)
                raise DecodeError(path, f"video cannot be decoded ({_decord_reason(error)})") from None
            if batch.shape[1:] != (height, width, 3):
                return frames_with_pyav(path, meta, unique, short_side, self.threads)
            return torch.from_numpy(batch)
        finally:
            del reader


def _decord_reason(error: Exception) -> str:
    # decord errors start with "[hh:mm:ss] /github/workspace/src/...cc:NN: " and repeat the path
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.split(": ", 1)[-1][:200] if text.startswith("[") else text[:200]


class TorchCodecDecoder(Decoder):
    """torchcodec (PyTorch's FFmpeg decoder): exact-seek ``get_frames_at`` with its decoder-native
    ``Resize``; audio through its ``AudioDecoder``."""

    name = "torchcodec"

    @classmethod
    def is_available(cls) -> bool:
        try:  # importing loads FFmpeg's shared libraries; missing ones raise here
            from torchcodec.decoders import AudioDecoder, VideoDecoder  # noqa: F401
        except Exception:
            return False
        return True

    def _frames(self, path, meta, unique, short_side):
        from torchcodec.decoders import VideoDecoder

        transforms = None
        if short_side is not None:
            from torchcodec.transforms import Resize

            transforms = [Resize(size=short_side_size(meta.height, meta.width, short_side))]
        try:
            decoder = VideoDecoder(str(path), dimension_order="NHWC", num_ffmpeg_threads=self.threads,
                                   seek_mode="exact", transforms=transforms)
        except Exception as error:
            raise DecodeError(path, f"not a readable video ({_reason(error)})") from None
        count = decoder.metadata.num_frames or meta.num_frames
        if int(unique[-1]) - (count - 1) > _truncation_slack(meta.num_frames):
            raise DecodeError(path, f"truncated: video ends at frame {count - 1} of {meta.num_frames}")
        try:
            batch = decoder.get_frames_at(indices=np.minimum(unique, count - 1).tolist()).data
        except Exception as error:
            raise DecodeError(path, f"video cannot be decoded ({_reason(error)})") from None
        if batch.shape[-1] == 1:  # grayscale sources come back with one channel
            batch = batch.expand(-1, -1, -1, 3)
        return batch.contiguous()

    def audio(self, path, start, end, sample_rate):
        from torchcodec.decoders import AudioDecoder

        path = check_file(path)
        length = max(0, round((end - start) * sample_rate))
        if not self.probe(path).has_audio:
            raise DecodeError(path, "no audio stream")
        try:
            decoder = AudioDecoder(str(path), sample_rate=sample_rate, num_channels=1)
        except Exception as error:
            raise DecodeError(path, f"audio stream cannot be decoded ({_reason(error)})") from None
        with _open_pyav(path) as container:
            clock = _video_start_seconds(container)
        t0, t1 = clock + start, clock + end
        meta = decoder.metadata
        audio_begin = float(meta.begin_stream_seconds_from_header or 0.0)
        audio_end = audio_begin + float(meta.duration_seconds_from_header or float("inf"))
        lo, hi = max(t0, audio_begin), min(t1, audio_end)
        if length == 0 or hi <= lo:
            return torch.zeros(1, length)
        try:
            samples = decoder.get_samples_played_in_range(start_seconds=lo, stop_seconds=hi)
        except Exception as error:
            raise DecodeError(path, f"audio stream cannot be decoded ({_reason(error)})") from None
        return _fit_audio(samples.data.mean(0), float(samples.pts_seconds), t0, length, sample_rate)


DECODERS: dict[str, type[Decoder]] = {
    "decord": DecordDecoder,
    "pyav": PyAVDecoder,
    "torchcodec": TorchCodecDecoder,
}
"""Every registered backend; :func:`available_decoders` lists those that load on this machine."""


def available_decoders() -> list[str]:
    """Names of the backends that import and load here, default (decord) first."""
    return [name for name, cls in DECODERS.items() if cls.is_available()]


def create_decoder(name: str = "decord", **kwargs) -> Decoder:
    """A decoder by name (``"decord"``, ``"pyav"``, ``"torchcodec"``); ``kwargs`` go to its constructor."""
    if name not in DECODERS:
        raise UserError(f"unknown decoder {name!r}; choose one of: {', '.join(available_decoders())}")
    cls = DECODERS[name]
    if not cls.is_available():
        raise UserError(f"decoder {name!r} is not usable here (import or FFmpeg libraries failed); "
                        f"choose one of: {', '.join(available_decoders())}")
    return cls(**kwargs)


def release_free_heap() -> bool:
    """Ask glibc to return freed heap pages to the OS (``malloc_trim(0)``); False where there is no glibc.

    FFmpeg and decord allocate and free many frame-sized buffers; glibc keeps freed chunks mapped, so RSS creeps up
    (fragmentation) although nothing is leaked. Trimming before a sample separates that from a real leak."""
    import ctypes
    import ctypes.util

    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True
