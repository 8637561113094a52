"""Video decoders: frames at given indices and audio in a time range, from decord, PyAV or torchcodec.

Every backend answers the same three questions with the same conventions, so the dataset never needs to
know which one runs:

* ``probe(path) -> VideoMeta``: metadata without decoding the video, sanitised (absurd fps fixed, missing
  frame counts counted from the packets). ``height`` / ``width`` are the upright picture's (a rotation in
  the display matrix swaps them). Cached per file (path, size, mtime) inside the decoder instance, with the
  :class:`StreamInfo` (codec, bit depth, rotation) that ``stream_info(path)`` returns.
* ``frames(path, indices, short_side=None)``: uint8 ``(T, H, W, 3)`` RGB, one frame per requested index,
  in the order of ``indices`` (duplicates allowed; each distinct frame is decoded once). Frame ``i`` is
  the ``i``-th frame in presentation order, also on variable-frame-rate files (no index is derived from a
  timestamp and an average rate). Frames are upright: the display rotation (phone videos) is applied,
  by torchcodec itself, after decoding for decord and PyAV. Indices are clamped to ``[0, num_frames - 1]``
  (keeping them in range is the sampler's job; clamping is only a safety net). ``short_side`` resizes
  inside the decoder (decord: reader width/height; PyAV: swscale in the RGB conversion; torchcodec:
  its decoder-native ``Resize``), keeping the aspect ratio.
* ``audio(path, start, end, sample_rate)``: float32 ``(1, round((end - start) * sample_rate))`` mono.
  Times are on the video clock (0 = the first video frame), so audio and frames line up even when the
  streams start at different timestamps. Outside the audio stream the result is zero-padded.
  Audio always goes through PyAV (torchcodec's ``AudioDecoder`` for the torchcodec backend).

At native size the three backends return the same pixels, bit for bit (tests/data/test_real_world_files.py:
VFR, rotated, B-frame/open-GOP, VP9/WebM, AV1/Matroska, HEVC and 10-bit files). Every failure is a
:class:`DecodeError` whose message is ``"<path>: <reason>"``; a codec the backend's FFmpeg has no decoder
for says so in one line and names the backends that can.

Decord notes: readers leak memory when kept open for long, so one reader is opened per ``frames`` call
and dropped right after. decord 0.6 also mis-sizes RGB frames for a few small frame sizes (e.g. 48x32
comes back with 4 "channels", and ``get_batch`` then fails); those calls fall back to PyAV. So do files
decord cannot decode or decodes wrongly (:func:`decord_cannot`: AV1, HEVC, more than 8 bits), with one
warning per reason.
"""
from __future__ import annotations

import ctypes
import ctypes.util
import logging
import math
import os
from abc import ABC, abstractmethod
from collections import OrderedDict
from pathlib import Path
from typing import Sequence

import av
import numpy as np
import torch

from videossl.data.sampling import VideoMeta
from videossl.data.video_index import (
    MISSING,
    FrameWalk,
    IndexCache,
    RGBConverter,
    StreamInfo,
    build_pts_index,
    can_decode,
    component_bits,
    mp4_rotation,
    no_decoder_reason,
    quarter_turns,
    rotate_frames,
    upright_size,
)
from videossl.errors import UserError

logger = logging.getLogger("videossl.data")

MAX_PLAUSIBLE_FPS = 1000.0  # above this the header is wrong (seen in files with broken time bases)
FALLBACK_FPS = 25.0  # used only when neither the header nor frames/duration give a usable rate
_PROBE_CACHE_SIZE = 4096
_FIRST_FRAME_PACKETS = 64  # the probe decodes at most this many packets to read the display rotation


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
    try:
        return av.open(str(path), metadata_errors="ignore")
    except Exception as error:  # av raises many FFmpegError subclasses; all mean "unreadable"
        raise DecodeError(path, f"not a readable video ({_reason(error)})") from None


def _reason(error: Exception) -> str:
    text = getattr(error, "strerror", None) or str(error) or type(error).__name__
    return text.strip().splitlines()[0][:200]


def probe_with_pyav(path: str | os.PathLike) -> VideoMeta:
    """Metadata of a video file via PyAV: see :func:`inspect_with_pyav`."""
    return inspect_with_pyav(path)[0]


def inspect_with_pyav(path: str | os.PathLike) -> tuple[VideoMeta, StreamInfo]:
    """Metadata of a video file via PyAV, and the :class:`StreamInfo` the decoders need.

    From the header, except: containers that store no frame count (Matroska / WebM) have their video packets
    counted (demux only: a duration times an average rate is wrong for variable-frame-rate files), and outside
    MP4 / MOV (whose ``tkhd`` box holds it) the first frame is decoded to read the display rotation.
    ``height`` / ``width`` are those of the upright picture."""
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
        # MP4 / MOV: the rotation from the header boxes; other containers (or odd boxes): from a decoded frame
        rotation = mp4_rotation(path) if container.format.name.startswith("mov") else None
        counted, first = _count_and_first_frame(container, stream, count=num_frames <= 0, decode=rotation is None)
        if num_frames <= 0:
            num_frames = counted
        if num_frames <= 0 and duration > 0 and header_fps:
            num_frames = max(1, round(duration * header_fps))
        if num_frames <= 0:
            raise DecodeError(path, "video stream has no frames")
        size = path.stat().st_size
        if num_frames > size:  # every frame takes at least a byte; decord aborts the process on such an index
            raise DecodeError(path, f"corrupt index: the header claims {num_frames} frames in a {size}-byte file")
        fps = sanitize_fps(header_fps, num_frames, duration)
        if duration <= 0:
            duration = num_frames / fps
        codec = getattr(stream.codec_context.codec, "canonical_name", "") or stream.codec_context.name or ""
        if rotation is None:
            rotation = quarter_turns(getattr(first, "rotation", 0)) if first is not None else 0
        bits = component_bits(first.format if first is not None else stream.codec_context.format)
        info = StreamInfo(codec=codec, bits=bits, rotation=rotation, coded_height=height, coded_width=width)
        up_height, up_width = upright_size(height, width, rotation)
        meta = VideoMeta(num_frames=num_frames, fps=fps, duration=duration, height=up_height, width=up_width,
                         has_audio=bool(container.streams.audio))
        return meta, info


def _count_and_first_frame(container, stream, count: bool, decode: bool):
    """``(video packets, first decoded frame)``: counts the packets only when ``count`` (else 0), decodes the
    first frame only when ``decode`` (else ``None``); stops as soon as both are done. An undecodable first frame
    gives ``None``: the frame calls report what is wrong with the file."""
    if not count and not decode:
        return 0, None
    packets, first = 0, None if decode else False
    stream.codec_context.thread_count = 1
    try:
        for packet in container.demux(stream):
            if packet.size:
                packets += 1
            if first is None:
                try:
                    first = next(iter(packet.decode()), None)
                except av.error.FFmpegError:
                    first = False  # do not try to decode again; keep counting
                if first is None and packets >= _FIRST_FRAME_PACKETS:
                    first = False  # a decoder that never outputs: give up on the rotation
            if first is not None and not count:
                break
    except av.error.FFmpegError:
        pass  # a damaged tail: keep the count so far
    return packets, (None if first is False else first)


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


def _file_key(path: Path) -> tuple:
    stat = path.stat()
    return str(path), stat.st_size, stat.st_mtime_ns


class Decoder(ABC):
    """One decoding backend. Instances are cheap, hold no open files, and are safe to pickle into
    DataLoader workers. ``threads``: FFmpeg threads per open file (1 suits multi-worker loaders)."""

    name: str = ""

    def __init__(self, threads: int = 1):
        self.threads = int(threads)
        self._probe_cache: OrderedDict[tuple, tuple[VideoMeta, StreamInfo]] = OrderedDict()
        self._indexes = IndexCache()

    @classmethod
    def is_available(cls) -> bool:
        """Whether the backend imports and its native libraries load."""
        return True

    def probe(self, path: str | os.PathLike) -> VideoMeta:
        """Metadata (see :func:`inspect_with_pyav`), cached by (path, size, mtime)."""
        return self._inspect(path)[0]

    def stream_info(self, path: str | os.PathLike) -> StreamInfo:
        """Codec, bit depth, rotation and coded size of the video stream (cached with :meth:`probe`)."""
        return self._inspect(path)[1]

    def _inspect(self, path: str | os.PathLike) -> tuple[VideoMeta, StreamInfo]:
        path = check_file(path)
        key = _file_key(path)
        found = self._probe_cache.get(key)
        if found is None:
            found = self._probe(path)
            self._probe_cache[key] = found
            if len(self._probe_cache) > _PROBE_CACHE_SIZE:
                self._probe_cache.popitem(last=False)
        return found

    def _probe(self, path: Path) -> tuple[VideoMeta, StreamInfo]:
        return inspect_with_pyav(path)

    def frames(self, path: str | os.PathLike, indices: Sequence[int], short_side: int | None = None) -> torch.Tensor:
        """uint8 ``(T, H, W, 3)`` RGB frames at ``indices`` (in that order), upright (the display rotation
        applied), optionally resized so the shorter side is ``short_side``."""
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

    def _require_codec(self, path: Path, info: StreamInfo) -> None:
        """A one-line ``DecodeError`` naming the codec and the backends that can decode it, when this backend's
        FFmpeg has no decoder for the file's codec."""
        if can_decode(self.name, info.codec) is False:
            raise DecodeError(path, no_decoder_reason(self.name, info.codec, available_decoders()))

    def audio(self, path: str | os.PathLike, start: float, end: float, sample_rate: int) -> torch.Tensor:
        """float32 ``(1, round((end - start) * sample_rate))`` mono audio on the video clock."""
        return audio_with_pyav(path, start, end, sample_rate)

    def __repr__(self) -> str:
        return f"{type(self).__name__}(threads={self.threads})"


class PyAVDecoder(Decoder):
    """PyAV (FFmpeg via Python bindings): frame ``i`` is the ``i``-th frame in presentation order, found through
    a per-file index of the packets' timestamps (built on first use, cached); seeks to the keyframe before each
    wanted frame that is not reached by decoding on, and converts only the wanted frames to RGB (resizing inside
    the same swscale call)."""

    name = "pyav"

    def _frames(self, path, meta, unique, short_side):
        info = self.stream_info(path)
        self._require_codec(path, info)
        return frames_with_pyav(path, meta, unique, short_side, self.threads, info=info, indexes=self._indexes)


def frames_with_pyav(path: Path, meta: VideoMeta, unique: np.ndarray, short_side: int | None, threads: int = 1,
                     info: StreamInfo | None = None, indexes: IndexCache | None = None) -> torch.Tensor:
    """See :class:`PyAVDecoder`. ``unique``: sorted distinct in-range indices; ``info``: the file's
    :class:`StreamInfo` (read here when not given); ``indexes``: a cache for the presentation-order index."""
    if info is None:
        info = inspect_with_pyav(path)[1]
    height, width = short_side_size(info.coded_height, info.coded_width, short_side)  # resized before turning
    wanted = [int(i) for i in unique]
    key = _file_key(path)
    index = indexes.get(key) if indexes is not None else MISSING
    walk = FrameWalk(path, _open_pyav, None, threads)
    try:
        if index is MISSING:
            index = build_pts_index(walk.container, walk.stream)  # leaves the container at the end
            if indexes is not None:
                indexes.put(key, index)
            walk.frames = None
        else:
            walk.frames = walk.container.decode(walk.stream)  # a fresh container is at the start
        walk.index = index
        convert = RGBConverter(height, width)
        out: dict[int, np.ndarray] = {}
        position, reach, fresh, key_pos = 0, 0, True, -1
        cap = len(index.keys) if index is not None else 0  # seeks go no further than this keyframe
        last, last_index = None, -1
        while position < len(wanted):
            target = wanted[position]
            if index is not None:
                target_key = min(index.key_before(min(target, len(index) - 1)), cap)
                if walk.frames is None or (target_key >= 0 and index.keys[target_key] > reach + 1):
                    key_pos, fresh = target_key, True
                    reach = walk.seek(key_pos)
            elif walk.frames is None:
                key_pos, fresh = -1, True
                reach = walk.seek(-1)
            try:
                frame = next(walk.frames)
            except StopIteration:
                break
            except av.error.FFmpegError as error:
                if last is None:
                    raise DecodeError(path, f"video cannot be decoded ({_reason(error)})") from None
                break  # a damaged tail: what was decoded stands, the rest is handled below
            current = walk.index_of(frame, reach - 1 if fresh else last_index)
            if fresh and current > target and key_pos >= 0:  # the seek landed past the keyframe: from here on,
                key_pos = cap = key_pos - 1  # seek no further than the keyframe before it (-1: the start)
                reach = walk.seek(key_pos)
                continue
            while position < len(wanted) and wanted[position] < current:  # frames missing before this one
                out[wanted[position]] = convert(frame if fresh or last is None else last,
                                                current if fresh or last is None else last_index)
                position += 1
            while position < len(wanted) and wanted[position] == current:
                out[wanted[position]] = convert(frame, current)
                position += 1
            last, last_index, fresh = frame, current, False
            reach = max(reach, current)
        if position < len(wanted):  # the stream ended before the last wanted index
            if last is None:
                raise DecodeError(path, "no decodable video frames")
            if wanted[-1] - last_index > _truncation_slack(meta.num_frames):
                raise DecodeError(path, f"truncated: video ends at frame {last_index} of {meta.num_frames}")
            for index_ in wanted[position:]:
                out[index_] = convert(last, last_index)
    finally:
        walk.close()
    return rotate_frames(torch.from_numpy(np.stack([out[i] for i in wanted])), info.rotation)


def _truncation_slack(num_frames: int) -> int:
    """Frame counts in headers are often off by a few frames; more missing than this is truncation."""
    return max(2, num_frames // 20)


_WARNED: set[str] = set()


def _warn_once(message: str) -> None:
    if message not in _WARNED:
        _WARNED.add(message)
        logger.warning(message)


def decord_cannot(info: StreamInfo) -> str | None:
    """Why the decord backend hands a file to PyAV instead (``None``: decord decodes it): a codec decord's bundled
    FFmpeg has no decoder for (AV1 in decord 0.6), HEVC (decord 0.6 returns other frames than asked after seeking
    in open-GOP HEVC, x265's default), or more than 8 bits per component (decord converts those to RGB
    differently from current FFmpeg)."""
    if can_decode("decord", info.codec) is False:
        return f"decord's FFmpeg has no {info.codec} decoder"
    if info.codec == "hevc":
        return "decord returns wrong frames after seeking in HEVC"
    if info.bits > 8:
        return f"decord converts {info.bits}-bit video to RGB differently"
    return None


class DecordDecoder(Decoder):
    """decord: frame-accurate random access with ``get_batch``; resizes with the reader's width/height, turns
    the frames upright afterwards. One reader per call (decord leaks memory in long-lived readers). Files decord
    cannot decode, or decodes wrongly (:func:`decord_cannot`), go through the PyAV path, with one warning per
    reason."""

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

        info = self.stream_info(path)
        why = decord_cannot(info)
        if why is not None:
            if can_decode("pyav", info.codec) is False:
                reason = f"{why}, and PyAV's FFmpeg has no {info.codec} decoder either"
                raise DecodeError(path, no_decoder_reason(self.name, info.codec, available_decoders(), reason))
            _warn_once(f"decord backend: {why}; such files ({info.codec}, {info.bits}-bit) are decoded with PyAV")
            return frames_with_pyav(path, meta, unique, short_side, self.threads, info=info, indexes=self._indexes)
        height, width = short_side_size(info.coded_height, info.coded_width, short_side)
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
                    return frames_with_pyav(path, meta, unique, short_side, self.threads, info, self._indexes)
                raise DecodeError(path, f"video cannot be decoded ({_decord_reason(error)})") from None
            if batch.shape[1:] != (height, width, 3):
                return frames_with_pyav(path, meta, unique, short_side, self.threads, info, self._indexes)
            return rotate_frames(torch.from_numpy(batch), info.rotation)
        finally:
            del reader


def _decord_reason(error: Exception) -> str:
    # decord errors start with "[hh:mm:ss] /github/workspace/src/...cc:NN: " and repeat the path
    text = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
    return text.split(": ", 1)[-1][:200] if text.startswith("[") else text[:200]


class TorchCodecDecoder(Decoder):
    """torchcodec (PyTorch's FFmpeg decoder): exact-seek ``get_frames_at`` with its decoder-native
    ``Resize``; it applies the display rotation itself; audio through its ``AudioDecoder``."""

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

        self._require_codec(path, self.stream_info(path))
        transforms = None
        if short_side is not None:
            from torchcodec.transforms import Resize

            # the size of the upright picture: torchcodec turns the frames before handing them out
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
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        libc.malloc_trim(0)
    except (OSError, AttributeError):
        return False
    return True
