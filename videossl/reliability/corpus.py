"""A corpus of broken media files for fuzzing the readers, generated from a few tiny good seed files.

``write_seeds(folder)`` writes the good seeds (H.264+AAC mp4 with the index first, H.264+AAC mkv, MPEG-4 Part 2
avi, VP9 webm, an uncompressed y4m stream, an AAC-only file, a PNG and a JPEG). ``make_corpus(out, count, seed)``
writes ``count`` mutated files, cycling through ``MUTATIONS``, and returns one ``FuzzCase`` per file.

``must_fail`` marks files no decoder may accept (nothing decodable is left: zero bytes, random bytes, text,
no video stream, impossible frame sizes). Every other case may decode (FFmpeg conceals many corruptions, reads
renamed files by content, decodes a PNG as one frame) or fail, but a failure must be a clean ``DecodeError``.
"""
from __future__ import annotations

import os
import struct
import subprocess
import sys
from pathlib import Path
from typing import Callable, NamedTuple

import av
import numpy as np
import torch
from torchvision.io import encode_jpeg, encode_png

from videossl.data.synthetic import _encode_audio, write_video

VIDEO_SUFFIXES = (".mp4", ".avi", ".mkv", ".webm", ".mov", ".m4v")
SEED_SIZE = 32  # pixels; the seeds are 32x32 (y4m: 16x16), 20 frames at 10 fps


class FuzzCase(NamedTuple):
    """One generated file: where it is, how it was made, and whether every decoder must reject it."""

    path: Path
    kind: str
    must_fail: bool
    note: str = ""


# ------------------------------------------------------------------------------------------------ seeds


def _pattern(num_frames: int, size: int, seed: int = 0) -> np.ndarray:
    """uint8 ``(T, H, W, 3)``: a colour gradient with a moving square, so every frame differs."""
    ys, xs = np.mgrid[0:size, 0:size]
    base = np.stack([xs * 255 // (size - 1), ys * 255 // (size - 1), np.full_like(xs, 60 + 40 * seed)], -1)
    frames = np.repeat(base[None].astype(np.uint8), num_frames, axis=0)
    for t in range(num_frames):
        x = (2 * t) % (size - 6)
        frames[t, size // 2 : size // 2 + 6, x : x + 6] = 255
    return frames


def _y4m_bytes(frames: np.ndarray, header: str = "") -> bytes:
    """A YUV4MPEG2 stream (4:4:4, so no chroma subsampling is needed) of RGB ``frames`` ``(T, H, W, 3)``."""
    t, h, w, _ = frames.shape
    rgb = frames.astype(np.float32)
    y = 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]
    u = 128 + 0.564 * (rgb[..., 2] - y)
    v = 128 + 0.713 * (rgb[..., 0] - y)
    planes = np.clip(np.stack([y, u, v], 1), 0, 255).astype(np.uint8)  # (T, 3, H, W)
    head = header or f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C444\n"
    return head.encode() + b"".join(b"FRAME\n" + plane.tobytes() for plane in planes)


def write_seeds(folder: str | Path) -> dict[str, Path]:
    """Write the good seed files into ``folder``; returns ``{name: path}``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    frames = _pattern(20, SEED_SIZE)
    tone = 0.3 * np.sin(2 * np.pi * 440 * np.arange(32000) / 16000).astype(np.float32)  # 2 s at 16 kHz
    seeds = {
        "mp4": write_video(folder / "seed.mp4", frames, 10, audio=tone, gop=5, threads=1),
        "mkv": write_video(folder / "seed.mkv", _pattern(20, SEED_SIZE, 1), 10, audio=tone, gop=5, threads=1),
        "avi": write_video(folder / "seed.avi", _pattern(20, SEED_SIZE, 2), 10, codec="mpeg4", crf=None, gop=5),
        "webm": write_video(folder / "seed.webm", _pattern(20, SEED_SIZE, 3), 10, codec="libvpx-vp9", crf=None,
                            gop=5, threads=1),
    }
    seeds["y4m"] = folder / "seed.y4m"
    seeds["y4m"].write_bytes(_y4m_bytes(_pattern(10, 16)))
    seeds["audio"] = folder / "seed_audio_only.m4a"
    with av.open(str(seeds["audio"]), "w", format="mp4") as container:
        stream = container.add_stream("aac", rate=16000)
        stream.layout = "mono"
        _encode_audio(container, stream, tone, 16000)
    image = torch.from_numpy(frames[0]).permute(2, 0, 1).contiguous()
    seeds["png"] = folder / "seed.png"
    seeds["png"].write_bytes(encode_png(image).numpy().tobytes())
    seeds["jpeg"] = folder / "seed.jpg"
    seeds["jpeg"].write_bytes(encode_jpeg(image).numpy().tobytes())
    return seeds


VIDEO_SEEDS = ("mp4", "mkv", "avi", "webm", "y4m")
SEED_FILES = {"mp4": "seed.mp4", "mkv": "seed.mkv", "avi": "seed.avi", "webm": "seed.webm", "y4m": "seed.y4m",
              "audio": "seed_audio_only.m4a", "png": "seed.png", "jpeg": "seed.jpg"}


def write_seeds_isolated(folder: str | Path) -> dict[str, Path]:
    """``write_seeds`` in a fresh Python process. Once decord is imported, its bundled FFmpeg libraries make
    PyAV's libvpx encoders fail to open (``avcodec_open2("libvpx-vp9") returned 22``), so the seeds are written
    where decord was never loaded."""
    folder = Path(folder)
    command = [sys.executable, "-c", "import sys; from videossl.reliability.corpus import write_seeds; "
                                     "write_seeds(sys.argv[1])", str(folder)]
    result = subprocess.run(command, capture_output=True, text=True, env=dict(os.environ, OMP_NUM_THREADS="1"))
    if result.returncode != 0:
        raise RuntimeError(f"writing the seed files in {folder} failed: {result.stderr.strip()[-500:]}")
    return {name: folder / file for name, file in SEED_FILES.items()}


# -------------------------------------------------------------------------------------------- mutations


def _video_seed(seeds: dict[str, Path], rng: np.random.Generator) -> bytes:
    return seeds[VIDEO_SEEDS[int(rng.integers(len(VIDEO_SEEDS)))]].read_bytes()


def _ext(rng: np.random.Generator) -> str:
    return VIDEO_SUFFIXES[int(rng.integers(len(VIDEO_SUFFIXES)))]


def _overwrite(data: bytes, rng: np.random.Generator, lo: int, hi: int, count: int) -> bytes:
    """``count`` random bytes written at random offsets in ``[lo, hi)``."""
    buf = bytearray(data)
    hi = max(min(hi, len(buf)), lo + 1)
    for offset in rng.integers(lo, hi, size=count):
        if offset < len(buf):
            buf[int(offset)] = int(rng.integers(256))
    return bytes(buf)


def _patch_box(data: bytes, fourcc: bytes, field_offset: int, fmt: str, value: int,
               v1_offset: int | None = None) -> bytes:
    """Write ``value`` (struct ``fmt``, big-endian) at ``field_offset`` from the start of every ISO-BMFF box
    ``fourcc`` (``v1_offset`` for version-1 full boxes)."""
    buf = bytearray(data)
    at = buf.find(fourcc)
    while at >= 4:
        start = at - 4  # the 32-bit box size precedes the type
        offset = v1_offset if v1_offset is not None and buf[at + 4] == 1 else field_offset
        end = start + offset + struct.calcsize(fmt)
        if end <= len(buf):
            buf[start + offset : end] = struct.pack(">" + fmt, value)
        at = buf.find(fourcc, at + 4)
    return bytes(buf)


def _absurd(rng: np.random.Generator) -> int:
    return int(rng.choice([0, 1, 0xFFFF, 0x7FFFFFFF, 0xFFFFFFFF, int(rng.integers(2**32))]))


# Each mutation: (rng, seeds) -> (bytes, suffix, must_fail, note)
Mutation = Callable[[np.random.Generator, dict], tuple[bytes, str, bool, str]]


def zero_length(rng, seeds):
    return b"", _ext(rng), True, "0 bytes"


def random_bytes(rng, seeds):
    size = int(rng.integers(1, 65536))
    return rng.bytes(size), _ext(rng), True, f"{size} random bytes"


def text_file(rng, seeds):
    return b"this is not a video\n" * int(rng.integers(1, 200)), _ext(rng), True, "text"


def truncated(rng, seeds):
    data = _video_seed(seeds, rng)
    cut = int(rng.integers(1, len(data)))
    return data[:cut], _ext(rng), False, f"first {cut} of {len(data)} bytes"


def head_cut(rng, seeds):
    data = _video_seed(seeds, rng)
    cut = int(rng.integers(1, len(data)))
    return data[cut:], _ext(rng), False, f"last {len(data) - cut} of {len(data)} bytes"


def corrupt_header(rng, seeds):
    data = _video_seed(seeds, rng)
    count = int(rng.integers(1, 17))
    return _overwrite(data, rng, 0, 1024, count), _ext(rng), False, f"{count} bytes overwritten in the first 1 KiB"


def corrupt_body(rng, seeds):
    data = _video_seed(seeds, rng)
    count = int(rng.integers(1, 200))
    return _overwrite(data, rng, len(data) // 10, len(data), count), _ext(rng), False, f"{count} body bytes overwritten"


def spliced(rng, seeds):
    a, b = _video_seed(seeds, rng), _video_seed(seeds, rng)
    return a[: len(a) // 2] + b[len(b) // 2 :], _ext(rng), False, "first half of one file + second half of another"


def absurd_mp4_counts(rng, seeds):
    """Frame counts, durations and time scales in the MP4 index set to absurd values (0, 2^31, 2^32 - 1, ...)."""
    data = seeds["mp4"].read_bytes()
    which = int(rng.integers(5))
    value = _absurd(rng)
    if which == 0:
        data = _patch_box(data, b"stts", 16, "I", value)  # first entry's sample count
    elif which == 1:
        data = _patch_box(data, b"stsz", 16, "I", value)  # sample count
    elif which == 2:
        data = _patch_box(data, b"mdhd", 24, "I", value, v1_offset=32)  # duration
    elif which == 3:
        data = _patch_box(data, b"mdhd", 20, "I", value, v1_offset=28)  # time scale (absurd fps)
    else:
        data = _patch_box(data, b"stts", 20, "I", value)  # first entry's sample delta
    field = ("stts count", "stsz count", "mdhd duration", "mdhd timescale", "stts delta")[which]
    return data, ".mp4", False, f"{field} = {value}"


def absurd_mp4_size(rng, seeds):
    """Width/height in the track header and the sample description set to absurd values."""
    data = seeds["mp4"].read_bytes()
    w, h = int(rng.choice([0, 1, 65535, 40000])), int(rng.choice([0, 1, 65535, 40000]))
    data = _patch_box(data, b"tkhd", 84, "I", w << 16, v1_offset=96)
    data = _patch_box(data, b"tkhd", 88, "I", h << 16, v1_offset=100)
    data = _patch_box(data, b"avc1", 32, "H", w)
    data = _patch_box(data, b"avc1", 34, "H", h)
    return data, ".mp4", False, f"header size {w}x{h}"


def absurd_y4m_size(rng, seeds):
    """A raw stream whose header declares an impossible frame size: nothing can be decoded."""
    w, h = [int(rng.choice([0, 100000, 99999999, 2**31])) for _ in range(2)]
    if w and h and w * h < 10**9:
        w = 0
    frames = _pattern(2, 16)
    return _y4m_bytes(frames, f"YUV4MPEG2 W{w} H{h} F10:1 Ip A1:1 C444\n"), _ext(rng), True, f"y4m {w}x{h}"


def absurd_y4m_rate(rng, seeds):
    rate = str(rng.choice(["1000000000:1", "0:0", "1:1000000", "0:1", "10:0", "-5:1"]))
    frames = _pattern(6, 16)
    return _y4m_bytes(frames, f"YUV4MPEG2 W16 H16 F{rate} Ip A1:1 C444\n"), _ext(rng), False, f"y4m rate {rate}"


def audio_only(rng, seeds):
    return seeds["audio"].read_bytes(), ".mp4", True, "AAC only, no video stream"


def still_image(rng, seeds):
    kind = "png" if rng.integers(2) else "jpeg"
    return seeds[kind].read_bytes(), _ext(rng), False, f"{kind} image renamed"


def wrong_extension(rng, seeds):
    name = VIDEO_SEEDS[int(rng.integers(len(VIDEO_SEEDS)))]
    return seeds[name].read_bytes(), _ext(rng), False, f"good {name} file with a video extension of another format"


def inserted_garbage(rng, seeds):
    data = _video_seed(seeds, rng)
    at = int(rng.integers(len(data)))
    return data[:at] + rng.bytes(int(rng.integers(1, 4096))) + data[at:], _ext(rng), False, f"garbage at byte {at}"


MUTATIONS: dict[str, Mutation] = {
    "zero_length": zero_length,
    "random_bytes": random_bytes,
    "text": text_file,
    "truncated": truncated,
    "head_cut": head_cut,
    "corrupt_header": corrupt_header,
    "corrupt_body": corrupt_body,
    "spliced": spliced,
    "inserted_garbage": inserted_garbage,
    "absurd_frame_count": absurd_mp4_counts,
    "absurd_header_size": absurd_mp4_size,
    "absurd_frame_size": absurd_y4m_size,
    "absurd_frame_rate": absurd_y4m_rate,
    "audio_only": audio_only,
    "still_image": still_image,
    "wrong_extension": wrong_extension,
}
"""Every kind of broken input; ``make_corpus`` cycles through them in this order."""


def make_corpus(out: str | Path, count: int, seed: int = 0) -> list[FuzzCase]:
    """Write ``count`` mutated files under ``out/cases`` (seeds under ``out/seeds``), one kind after another.

    The same ``(count, seed)`` always writes the same bytes; file names are ``<number>_<kind><suffix>``.
    """
    out = Path(out)
    seeds = write_seeds_isolated(out / "seeds")
    cases_dir = out / "cases"
    cases_dir.mkdir(parents=True, exist_ok=True)
    kinds = list(MUTATIONS)
    cases = []
    for number in range(count):
        kind = kinds[number % len(kinds)]
        rng = np.random.default_rng([seed, number])
        data, suffix, must_fail, note = MUTATIONS[kind](rng, seeds)
        path = cases_dir / f"{number:05d}_{kind}{suffix}"
        path.write_bytes(data)
        cases.append(FuzzCase(path, kind, must_fail, note))
    return cases
