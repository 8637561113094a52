"""Decoder helpers for the video files people actually have: stream facts (codec, bit depth, display rotation),
a presentation-order frame index for PyAV, upright rotation, and which backend's FFmpeg can decode a codec.

* ``StreamInfo``: what the decoders need beyond ``VideoMeta``: the canonical codec name (``"h264"``, ``"hevc"``,
  ``"vp9"``, ``"av1"``...), the bits per pixel component (8, 10, 12), the coded frame size and the rotation the
  container's display matrix asks for (phone videos), as a multiple of 90 degrees counter-clockwise. Flips in the
  display matrix are not applied (neither FFmpeg's ``rotation`` nor torchcodec applies them).
* ``PtsIndex``: one presentation timestamp per frame, sorted, so frame ``i`` is the ``i``-th frame in presentation
  order (how decord and torchcodec count), however irregular the timestamps are (variable frame rate), plus the
  keyframes to seek to. Built from the packets (demux only, no decode).
* ``can_decode(backend, codec)``: whether the FFmpeg that backend loads has a decoder for ``codec`` (``None`` when
  it cannot be told), from ``avcodec_find_decoder`` in that very library.
"""
from __future__ import annotations

import ctypes
import functools
import math
import struct
from collections import OrderedDict
from fractions import Fraction
from pathlib import Path
from typing import NamedTuple

import av
import numpy as np
import torch


class StreamInfo(NamedTuple):
    codec: str  # FFmpeg's canonical codec name; "" when unknown
    bits: int  # bits per component of the decoded pixel format
    rotation: int  # 0, 90, 180 or 270: counter-clockwise turn that makes a decoded frame upright
    coded_height: int
    coded_width: int


def quarter_turns(degrees: float | None) -> int:
    """A display rotation in degrees (counter-clockwise, any range) as 0, 90, 180 or 270 (nearest quarter turn)."""
    if not degrees:
        return 0
    return (int(round(float(degrees) / 90.0)) % 4) * 90


def upright_size(height: int, width: int, rotation: int) -> tuple[int, int]:
    """``(height, width)`` of a ``height x width`` coded frame once turned by ``rotation`` degrees."""
    return (width, height) if rotation in (90, 270) else (height, width)


def rotate_frames(frames: torch.Tensor, rotation: int) -> torch.Tensor:
    """``(T, H, W, C)`` frames turned ``rotation`` degrees counter-clockwise (as displayed), contiguous."""
    k = rotation // 90 % 4
    if k == 0:
        return frames
    return torch.rot90(frames, k, dims=(1, 2)).contiguous()


def component_bits(video_format) -> int:
    """Largest bits per component of a PyAV ``VideoFormat`` (8 when unknown)."""
    try:
        return max((int(c.bits) for c in video_format.components), default=8)
    except Exception:  # formats without a descriptor (hardware surfaces) or None
        return 8


# ------------------------------------------------------------------------------------------ mp4 rotation


def _boxes(handle, start: int, end: int):
    """``(type, payload start, box end)`` of the ISO-BMFF boxes between ``start`` and ``end``."""
    position = start
    while position + 8 <= end:
        handle.seek(position)
        head = handle.read(8)
        if len(head) < 8:
            return
        size, kind = struct.unpack(">I4s", head)
        header = 8
        if size == 1:
            size, header = struct.unpack(">Q", handle.read(8))[0], 16
        elif size == 0:
            size = end - position
        if size < header:
            return
        yield kind, position + header, min(position + size, end)
        position += size


def _matrix(handle, offset: int) -> list[list[int]]:
    handle.seek(offset)
    values = struct.unpack(">9i", handle.read(36))
    return [list(values[0:3]), list(values[3:6]), list(values[6:9])]


def _version(handle, offset: int) -> int:
    handle.seek(offset)
    return handle.read(1)[0]


def mp4_rotation(path: str | Path) -> int | None:
    """The display rotation of the first video track of an MP4 / MOV file, read from its ``tkhd`` and ``mvhd``
    matrices the way FFmpeg's mov demuxer combines them (so it equals the ``rotation`` of the frames FFmpeg
    decodes); ``None`` when the boxes are not where they should be (the caller then asks FFmpeg)."""
    try:
        with open(path, "rb") as handle:
            end = handle.seek(0, 2)
            moov = next(((a, b) for kind, a, b in _boxes(handle, 0, end) if kind == b"moov"), None)
            if moov is None:
                return None
            movie = None
            for kind, a, b in _boxes(handle, *moov):
                if kind == b"mvhd":
                    movie = _matrix(handle, a + (48 if _version(handle, a) == 1 else 36))
                elif kind == b"trak" and movie is not None:
                    track, handler = None, None
                    for inner, c, d in _boxes(handle, a, b):
                        if inner == b"tkhd":
                            track = _matrix(handle, c + (52 if _version(handle, c) == 1 else 40))
                        elif inner == b"mdia":
                            for box, e, _ in _boxes(handle, c, d):
                                if box == b"hdlr":
                                    handle.seek(e + 8)
                                    handler = handle.read(4)
                    if handler == b"vide" and track is not None:
                        return _display_rotation(track, movie)
            return None
    except (OSError, struct.error, IndexError, StopIteration):
        return None


def _display_rotation(track: list[list[int]], movie: list[list[int]]) -> int:
    """FFmpeg's ``mov_read_tkhd`` product (16.16 / 2.30 fixed point) and ``av_display_rotation_get``."""
    shift = (16, 16, 30)
    m = [[sum((track[i][e] * movie[e][j]) >> shift[e] for e in range(3)) for j in range(3)] for i in range(3)]
    a, b, c, d = m[0][0] / 65536, m[0][1] / 65536, m[1][0] / 65536, m[1][1] / 65536
    scale0, scale1 = math.hypot(a, c), math.hypot(b, d)
    if scale0 == 0 or scale1 == 0:
        return 0
    return quarter_turns(-math.degrees(math.atan2(b / scale1, a / scale0)))


# ------------------------------------------------------------------------------------------ pts index


class PtsIndex(NamedTuple):
    """Presentation order of a video stream: ``pts[i]`` is frame ``i``'s timestamp (sorted); ``keys`` holds the
    frame indices of the keyframes (sorted). About 8 bytes per frame."""

    pts: np.ndarray
    keys: np.ndarray

    def __len__(self) -> int:
        return len(self.pts)

    def index_of(self, pts: int) -> int:
        """Frame index of a decoded frame's timestamp (the nearest frame for a timestamp not in the index; the
        first of frames that share one)."""
        i = int(np.searchsorted(self.pts, pts, side="left"))
        if i >= len(self.pts):
            return len(self.pts) - 1
        if i > 0 and self.pts[i] != pts and pts - self.pts[i - 1] < self.pts[i] - pts:
            return i - 1
        return i

    def key_before(self, index: int) -> int:
        """Position in ``keys`` of the last keyframe at or before frame ``index`` (-1 when there is none)."""
        return int(np.searchsorted(self.keys, index, side="right")) - 1


def build_pts_index(container, stream) -> PtsIndex | None:
    """Demux (no decode) every packet of ``stream`` and index the frames by presentation timestamp. ``None`` when
    the packets carry no timestamps (then frames can only be counted from the start). A demux error ends the scan
    (a truncated file keeps the frames before the damage). The container is left at the end of the file."""
    stamps: list[int] = []
    keyframe: list[bool] = []
    try:
        for packet in container.demux(stream):
            if not packet.size or packet.is_discard:  # flush packets; samples an edit list drops
                continue
            ts = packet.pts if packet.pts is not None else packet.dts
            if ts is None:
                return None
            stamps.append(int(ts))
            keyframe.append(bool(packet.is_keyframe))
    except av.error.FFmpegError:
        pass
    if not stamps:
        return None
    order = np.argsort(np.asarray(stamps, dtype=np.int64), kind="stable")
    pts = np.asarray(stamps, dtype=np.int64)[order]
    keys = np.flatnonzero(np.asarray(keyframe, dtype=bool)[order])
    return PtsIndex(pts, keys)


INDEX_CACHE_FRAMES = 2_000_000  # frames held by one decoder's presentation-order indexes (8 bytes each)
MISSING = object()  # IndexCache.get: not cached (None is a cached 'no timestamps')


class IndexCache:
    """LRU of presentation-order indexes (:class:`PtsIndex`, or ``None`` for files without timestamps) by
    (path, size, mtime), bounded by the frames they hold, not by files: one long video weighs as much as many
    short clips."""

    def __init__(self, budget_frames: int = INDEX_CACHE_FRAMES):
        self.budget = budget_frames
        self.items: OrderedDict[tuple, PtsIndex | None] = OrderedDict()
        self.frames = 0

    def get(self, key: tuple):
        if key not in self.items:
            return MISSING
        self.items.move_to_end(key)
        return self.items[key]

    def put(self, key: tuple, index: PtsIndex | None) -> None:
        if key in self.items:
            return
        self.items[key] = index
        self.frames += len(index) if index is not None else 0
        while self.frames > self.budget and len(self.items) > 1:
            _, old = self.items.popitem(last=False)
            self.frames -= len(old) if old is not None else 0


class FrameWalk:
    """Decoded frames of one video stream with their presentation-order index, from the start or from a
    keyframe of ``index``. ``opener(path)`` opens the container."""

    def __init__(self, path: Path, opener, index: PtsIndex | None, threads: int):
        self.path, self.opener, self.index, self.threads = path, opener, index, threads
        self.container = opener(path)
        self.stream = self.container.streams.video[0]
        self.stream.codec_context.thread_count = threads
        self.frames = None  # the decode iterator of the current pass
        self.count = 0  # frames decoded in the current pass

    def seek(self, key_pos: int) -> int:
        """Start a pass at ``index.keys[key_pos]`` (``-1``: the start of the file); returns its frame index."""
        self.count = 0
        if key_pos >= 0 and self.index is not None:
            first = int(self.index.keys[key_pos])
            try:
                self.container.seek(int(self.index.pts[first]), stream=self.stream, backward=True)
                self.frames = self.container.decode(self.stream)
                return first
            except av.error.FFmpegError:
                pass  # an unseekable file: decode from the start
        self.container.close()
        self.container = self.opener(self.path)
        self.stream = self.container.streams.video[0]
        self.stream.codec_context.thread_count = self.threads
        self.frames = self.container.decode(self.stream)
        return 0

    def index_of(self, frame, previous: int) -> int:
        self.count += 1
        if self.index is None:  # no timestamps: count (passes always begin at the start then)
            return self.count - 1
        if frame.pts is None:
            return previous + 1
        return self.index.index_of(int(frame.pts))

    def close(self) -> None:
        self.container.close()


class RGBConverter:
    """Decoded frame -> uint8 ``(H, W, 3)`` RGB at ``height x width``, remembering the last conversion. 8-bit
    frames go through swscale directly (what decord and torchcodec give, bit for bit); deeper ones (10/12-bit)
    through an FFmpeg filter graph, whose conversion is what torchcodec and the ffmpeg command line give."""

    def __init__(self, height: int, width: int):
        self.height, self.width = height, width
        self.last: tuple[int, np.ndarray] | None = None
        self.graphs: dict[tuple, tuple] = {}

    def __call__(self, frame, index: int) -> np.ndarray:
        if self.last is None or self.last[0] != index:
            if component_bits(frame.format) <= 8:
                rgb = frame.to_ndarray(format="rgb24", width=self.width, height=self.height)
            else:
                rgb = self._through_graph(frame)
            self.last = (index, rgb)
        return self.last[1]

    def _through_graph(self, frame) -> np.ndarray:
        key = (frame.width, frame.height, frame.format.name)
        if key not in self.graphs:
            graph = av.filter.Graph()
            chain = [graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                                      time_base=frame.time_base or Fraction(1, 1000))]
            if (frame.height, frame.width) != (self.height, self.width):
                chain.append(graph.add("scale", f"{self.width}:{self.height}:flags=bilinear"))
            chain += [graph.add("format", "rgb24"), graph.add("buffersink")]
            for a, b in zip(chain, chain[1:]):
                a.link_to(b)
            graph.configure()
            self.graphs[key] = (graph, chain[0], chain[-1])
        graph, source, sink = self.graphs[key]
        source.push(frame)
        return sink.pull().to_ndarray()


# ------------------------------------------------------------------------------------------ codec support


@functools.lru_cache(maxsize=None)
def _libavcodec(backend: str) -> str | None:
    """Path or soname of the libavcodec that ``backend`` decodes with (``None`` when it cannot be found)."""
    try:
        if backend == "torchcodec":
            from torchcodec._core import get_ffmpeg_library_versions

            major = get_ffmpeg_library_versions()["libavcodec"][0]
            return f"libavcodec.so.{int(major)}"
        package = __import__({"pyav": "av", "decord": "decord"}[backend])
    except Exception:
        return None
    root = Path(package.__file__).parent
    for folder in (root.parent / f"{root.name}.libs", root):  # auditwheel's bundled copy, or beside the module
        hits = sorted(folder.glob("libavcodec*.so*"))
        if hits:
            return str(hits[0])
    return None


@functools.lru_cache(maxsize=None)
def can_decode(backend: str, codec: str) -> bool | None:
    """Whether ``backend``'s FFmpeg has a decoder for ``codec`` (FFmpeg's codec name); ``None``: cannot tell."""
    library = _libavcodec(backend)
    if not codec or library is None:
        return None
    try:
        lib = ctypes.CDLL(library)
        lib.avcodec_descriptor_get_by_name.restype = ctypes.c_void_p
        lib.avcodec_descriptor_get_by_name.argtypes = [ctypes.c_char_p]
        lib.avcodec_find_decoder.restype = ctypes.c_void_p
        lib.avcodec_find_decoder.argtypes = [ctypes.c_int]
        descriptor = lib.avcodec_descriptor_get_by_name(codec.encode())
        if not descriptor:  # a codec this FFmpeg does not even know by name
            return False
        codec_id = ctypes.c_int.from_address(descriptor).value  # AVCodecDescriptor starts with its AVCodecID
        return bool(lib.avcodec_find_decoder(codec_id))
    except (OSError, AttributeError, ValueError):
        return None


def no_decoder_reason(backend: str, codec: str, backends: list[str], why: str | None = None) -> str:
    """One line for a backend that cannot decode ``codec`` here (``why``: default, its FFmpeg has no decoder),
    naming the backends here that can."""
    able = [b for b in backends if b != backend and can_decode(b, codec)]
    hint = f"decoders that can: {', '.join(able)} (data.decoder=...)" if able else "no installed decoder can"
    return f"{backend} cannot decode {codec} video ({why or f'no {codec} decoder in the FFmpeg it uses'}); {hint}"
