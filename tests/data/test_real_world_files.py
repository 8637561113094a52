"""The video files people actually have (issue 21 item 3): variable frame rate, a rotation in the display matrix
(phone videos), B-frames with open GOPs, VP9 in WebM, AV1 in Matroska, HEVC and 10-bit. Every backend returns,
bit for bit, the frames that plain PyAV decoding gives in presentation order, turned upright; the readers find
videos whatever their extension.

The files are written once per session by this very file run as a script in a fresh process
(``python tests/data/test_real_world_files.py DIR``): once decord is imported, its bundled FFmpeg makes PyAV's
libvpx encoder fail to open (docs/reliability.md). A case whose encoder this PyAV lacks is skipped with the reason.
Every frame carries its index in a grey block at the top-left of the upright picture (``index_of``).
"""
from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

BACKENDS = ("decord", "pyav", "torchcodec")
BLOCK = 8
FPS = 16


def frame_code(index: int) -> int:
    """Grey level of frame ``index``'s block: 56 levels 4 apart, neighbouring frames far apart."""
    return 16 + 4 * ((index * 29) % 56)


def index_of(frame) -> int:
    block = np.asarray(frame)[1 : BLOCK - 1, 1 : BLOCK - 1].astype(np.float64).mean()
    return int(np.argmin(np.abs(np.array([frame_code(i) for i in range(56)]) - block)))


def pattern(num_frames: int, height: int, width: int, seed: int) -> np.ndarray:
    """uint8 ``(T, H, W, 3)`` upright pictures: a gradient, a moving square, the index block at the top-left."""
    rng = np.random.default_rng(seed)
    ys, xs = np.mgrid[0:height, 0:width]
    base = np.stack([xs * 255 // (width - 1), ys * 255 // (height - 1), np.full_like(xs, 40 + 20 * seed)], -1)
    frames = np.repeat(base[None].astype(np.uint8), num_frames, axis=0)
    for i in range(num_frames):
        x = (i * 3 + int(rng.integers(0, 3))) % (width - 6)
        frames[i, height - 8 : height - 2, x : x + 6] = 255
        frames[i, :BLOCK, :BLOCK] = frame_code(i)
    return frames


def vfr_pts() -> list[int]:
    """Milliseconds of 48 frames: 16 fps, a 0.5 s gap after frame 20, frames 30-37 twice as fast."""
    pts, t = [], 0
    for i in range(48):
        pts.append(t)
        t += 62 if i != 20 else 562
        if 30 <= i < 38:
            t -= 31
    return pts


# name: (file, encoder, frames (T, H, W) and seed, writer options). Sizes: x265 needs 64 px wide for 10-bit,
# SVT-AV1 64x64.
CASES = {
    "vfr_mp4": ("vfr.mp4", "libx264", (48, 32, 32, 0), {"pts": vfr_pts(), "gop": 12}),
    "vfr_mkv": ("vfr.mkv", "libx264", (48, 32, 32, 1), {"pts": vfr_pts(), "gop": 12}),
    "bframes": ("bframes.mp4", "libx264", (48, 32, 48, 2),
                {"gop": 12, "options": {"x264-params": "bframes=3:b-pyramid=normal:open-gop=1"}}),
    "rotated_90": ("rotated_90.mp4", "libx264", (24, 48, 32, 3), {"rotation": 90, "gop": 8}),
    "rotated_270": ("rotated_270.mp4", "libx264", (24, 48, 32, 4), {"rotation": -90, "gop": 8}),  # iPhone portrait
    "rotated_180": ("rotated_180.mp4", "libx264", (24, 32, 48, 5), {"rotation": 180, "gop": 8}),
    "rotated_webm": ("rotated.webm", "libvpx-vp9", (24, 48, 32, 11),  # Matroska keeps it as a projection roll
                     {"rotation": -90, "gop": 8, "options": {"crf": "10", "b": "0"}}),
    "vp9_webm": ("vp9.webm", "libvpx-vp9", (40, 32, 48, 6),
                 {"gop": 12, "options": {"crf": "10", "b": "0", "lag-in-frames": "16", "auto-alt-ref": "1"}}),
    "av1_mkv": ("av1.mkv", "libsvtav1", (32, 64, 64, 7), {"gop": 12, "options": {"crf": "20", "preset": "10"}}),
    "hevc_mp4": ("hevc.mp4", "libx265", (40, 48, 64, 8),
                 {"options": {"x265-params": "log-level=error:bframes=3:open-gop=1:keyint=12"}}),
    "hevc_10bit": ("hevc10.mkv", "libx265", (40, 48, 64, 9),
                   {"pix_fmt": "yuv420p10le", "options": {"x265-params": "log-level=error:keyint=12"}}),
    "h264_10bit": ("h264_10bit.mp4", "libx264", (40, 32, 48, 10), {"pix_fmt": "yuv420p10le", "gop": 12}),
}
ALTERNATIVES = {"libsvtav1": ("libaom-av1", "librav1e")}  # other AV1 encoders, tried in order


def write_case(path: Path, codec: str, frames: np.ndarray, *, pts=None, rotation=None, gop=None,
               pix_fmt="yuv420p", options=None) -> None:
    """``frames`` are upright; with ``rotation`` the coded pictures are turned the other way and the display
    matrix asks for ``rotation`` degrees counter-clockwise, so a decoder that applies it shows ``frames``."""
    import av

    if rotation:
        frames = np.ascontiguousarray(np.rot90(frames, -(rotation // 90), axes=(1, 2)))
    options = dict(options or {})
    if codec == "libx264":
        options.setdefault("crf", "12")
    if codec == "libx265":
        options.setdefault("crf", "12")
    with av.open(str(path), "w") as container:
        stream = container.add_stream(codec, rate=FPS, options=options)
        stream.width, stream.height, stream.pix_fmt = frames.shape[2], frames.shape[1], pix_fmt
        stream.codec_context.thread_count = 1
        if gop:
            stream.gop_size = gop
        if pts is not None:
            stream.codec_context.time_base = stream.time_base = Fraction(1, 1000)
        if rotation:
            stream.set_display_rotation(rotation)
        for i, array in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(array, format="rgb24")
            if pts is not None:
                frame.pts, frame.time_base = pts[i], Fraction(1, 1000)
            container.mux(stream.encode(frame))
        container.mux(stream.encode())


def write_all(folder: Path) -> dict[str, str]:
    """Write every case into ``folder``; returns ``{case: path}`` or ``{case: "skip: <reason>"}`` (also saved as
    ``cases.json``). Run in a process where decord was never imported."""
    import av

    folder.mkdir(parents=True, exist_ok=True)
    result = {}
    for name, (file, codec, (t, h, w, seed), kwargs) in CASES.items():
        encoders = [c for c in (codec, *ALTERNATIVES.get(codec, ())) if c in av.codecs_available]
        if not encoders:
            result[name] = f"skip: this PyAV has no {codec} encoder"
            continue
        try:
            write_case(folder / file, encoders[0], pattern(t, h, w, seed), **kwargs)
            result[name] = str(folder / file)
        except Exception as error:  # an encoder that exists but does not open here
            result[name] = f"skip: {encoders[0]} failed ({type(error).__name__}: {str(error)[:120]})"
    (folder / "cases.json").write_text(json.dumps(result, indent=1))
    return result


@pytest.fixture(scope="session")
def real_world_files(tmp_path_factory) -> dict[str, str]:
    folder = tmp_path_factory.mktemp("real_world_files")
    done = subprocess.run([sys.executable, __file__, str(folder)], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, OMP_NUM_THREADS="1"))
    if done.returncode != 0:
        raise RuntimeError(f"writing the real-world fixtures failed: {done.stderr.strip()[-800:]}")
    return json.loads((folder / "cases.json").read_text())


def case_path(files: dict[str, str], case: str) -> Path:
    found = files[case]
    if found.startswith("skip: "):
        pytest.skip(found[len("skip: "):])
    return Path(found)


def decoder_for(backend: str):
    from videossl.data.decode import DECODERS, create_decoder

    if not DECODERS[backend].is_available():
        pytest.skip(f"{backend} does not load here")
    return create_decoder(backend)


def _rgb(frame) -> np.ndarray:
    """Plain PyAV RGB: swscale for 8-bit frames; FFmpeg's own conversion (a ``format`` filter) for deeper ones."""
    import av

    if max(c.bits for c in frame.format.components) <= 8:
        return frame.to_ndarray(format="rgb24")
    graph = av.filter.Graph()
    source = graph.add_buffer(width=frame.width, height=frame.height, format=frame.format.name,
                              time_base=frame.time_base or Fraction(1, 1000))
    convert, sink = graph.add("format", "rgb24"), graph.add("buffersink")
    source.link_to(convert)
    convert.link_to(sink)
    graph.configure()
    source.push(frame)
    return sink.pull().to_ndarray()


_REFERENCE: dict[Path, np.ndarray] = {}


def plain_pyav(path: Path) -> np.ndarray:
    """Every frame decoded front to back by plain PyAV, in presentation order (sorted by timestamp), turned by
    the frame's own display rotation."""
    import av

    if path not in _REFERENCE:
        with av.open(str(path)) as container:
            stream = container.streams.video[0]
            stream.codec_context.thread_count = 1
            decoded = [(f.pts, _rgb(f), f.rotation or 0) for f in container.decode(stream)]
        decoded.sort(key=lambda item: item[0])
        _REFERENCE[path] = np.stack([np.rot90(rgb, round(turn / 90) % 4) for _, rgb, turn in decoded])
    return _REFERENCE[path]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("case", list(CASES))
def test_every_backend_returns_plain_pyav_frames(real_world_files, case, backend):
    path = case_path(real_world_files, case)
    decoder = decoder_for(backend)
    reference = plain_pyav(path)
    count, height, width = reference.shape[:3]
    meta = decoder.probe(path)
    assert (meta.num_frames, meta.height, meta.width) == (count, height, width)
    for indices in (list(range(count)),  # front to back
                    [count * 3 // 10, count * 6 // 10, count * 9 // 10],  # the 30 / 60 / 90: seeks
                    [count - 1, 0, count // 2, count // 2, 1]):  # backwards, repeated
        frames = decoder.frames(path, indices).numpy()
        assert frames.shape == (len(indices), height, width, 3), (case, backend, indices)
        same = [bool(np.array_equal(f, reference[i])) for f, i in zip(frames, indices)]
        assert all(same), (case, backend, [i for i, ok in zip(indices, same) if not ok])


def test_vfr_frame_index_is_presentation_order_not_average_rate(real_world_files):
    """The issue's report: on a VFR file pyav returned frames 34, 55, 89 for 30, 60, 90."""
    for case in ("vfr_mp4", "vfr_mkv"):
        path = case_path(real_world_files, case)
        for backend in BACKENDS:
            decoder = decoder_for(backend)
            assert decoder.probe(path).num_frames == 48, (case, backend)  # mkv: counted, not duration x rate
            frames = decoder.frames(path, [14, 28, 43, 21, 47])
            assert [index_of(f) for f in frames] == [14, 28, 43, 21, 47], (case, backend)


@pytest.mark.parametrize("backend", BACKENDS)
def test_rotated_videos_come_out_upright_at_any_size(real_world_files, backend):
    from videossl.data.decode import short_side_size

    decoder = decoder_for(backend)
    for case in ("rotated_90", "rotated_270", "rotated_180", "rotated_webm"):
        path = case_path(real_world_files, case)
        t, height, width, _ = CASES[case][2]
        meta = decoder.probe(path)
        assert (meta.height, meta.width) == (height, width), (case, backend)  # the upright picture's size
        frames = decoder.frames(path, [5, 0, 17])
        assert frames.shape == (3, height, width, 3) and [index_of(f) for f in frames] == [5, 0, 17], (case, backend)
        small = decoder.frames(path, [5, 0], short_side=16)
        assert small.shape[1:3] == short_side_size(height, width, 16), (case, backend)
        reference = create_pyav().frames(path, [5, 0], short_side=16).float()
        # each backend resizes with its own scaler (torchcodec antialiases): a few levels apart on these sharp
        # 16-px pictures, where a wrong turn or stretch is tens of levels apart
        assert (small.float() - reference).abs().mean() <= 8.0, (case, backend)


def create_pyav():
    from videossl.data.decode import create_decoder

    return create_decoder("pyav")


def test_the_ffmpeg_command_line_agrees(real_world_files):
    """A witness outside PyAV: ``ffmpeg`` (its own build, autorotation on) writes the same RGB frames as the
    pyav backend, frame for frame, in presentation order."""
    if shutil.which("ffmpeg") is None:
        pytest.skip("no ffmpeg command here")
    decoder = create_pyav()
    for case, found in real_world_files.items():
        if found.startswith("skip: "):
            continue
        path = Path(found)
        meta = decoder.probe(path)
        command = ["ffmpeg", "-v", "error", "-threads", "1", "-i", str(path), "-map", "0:v:0", "-fps_mode",
                   "passthrough", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"]
        done = subprocess.run(command, capture_output=True, timeout=60)
        if done.returncode != 0 and b"fps_mode" in done.stderr:  # FFmpeg < 5.1
            command[command.index("-fps_mode"):command.index("-fps_mode") + 2] = ["-vsync", "passthrough"]
            done = subprocess.run(command, capture_output=True, timeout=60)
        if done.returncode != 0:
            continue  # a codec this ffmpeg build cannot decode
        cli = np.frombuffer(done.stdout, np.uint8).reshape(-1, meta.height, meta.width, 3)
        assert np.array_equal(decoder.frames(path, range(meta.num_frames)).numpy(), cli), case


def test_mp4_header_rotation_is_what_ffmpeg_applies(real_world_files, tmp_path):
    """MP4 / MOV rotations come from the tkhd x mvhd matrices without decoding; with a movie matrix too (here a
    quarter turn on top of the track's) they must still equal the rotation FFmpeg puts on the decoded frames."""
    import av

    from videossl.data.video_index import mp4_rotation, quarter_turns

    source = case_path(real_world_files, "rotated_90")
    data = bytearray(source.read_bytes())
    at = data.find(b"mvhd")
    assert at > 0 and data[at + 4] == 0  # version 0: the matrix is 36 bytes into the payload
    quarter = [0, -65536, 0, 65536, 0, 0, 0, 0, 1 << 30]  # what set_display_rotation(90) writes
    data[at + 4 + 36 : at + 4 + 72] = b"".join(v.to_bytes(4, "big", signed=True) for v in quarter)
    patched = tmp_path / "movie_matrix.mp4"
    patched.write_bytes(bytes(data))
    for path in (source, patched, case_path(real_world_files, "rotated_270"), case_path(real_world_files, "bframes")):
        with av.open(str(path)) as container:
            applied = quarter_turns(next(container.decode(video=0)).rotation)
        assert mp4_rotation(path) == applied, path.name
    assert mp4_rotation(patched) == 180
    assert mp4_rotation(case_path(real_world_files, "vp9_webm")) is None  # not MP4: the caller decodes a frame


def test_a_seek_that_lands_late_backs_off_to_an_earlier_keyframe(real_world_files, monkeypatch):
    """Seeks are checked: when the first frame after one is past the wanted frame (a demuxer that seeks to a
    later keyframe than asked), the pyav backend goes back a keyframe at a time, down to the start."""
    from videossl.data import video_index

    real_seek, calls = video_index.FrameWalk.seek, []

    def late_seek(self, key_pos):  # lands two keyframes later than asked, and says it did as asked
        calls.append(key_pos)
        if key_pos >= 0 and key_pos + 2 < len(self.index.keys):
            real_seek(self, key_pos + 2)
            return int(self.index.keys[key_pos])
        return real_seek(self, key_pos)

    monkeypatch.setattr(video_index.FrameWalk, "seek", late_seek)
    for case in ("vfr_mp4", "bframes", "vp9_webm"):
        path = case_path(real_world_files, case)
        reference, calls[:] = plain_pyav(path), []
        count = len(reference)
        for indices in ([count - 1, count // 2, 3], [count // 2, count // 2 + 1, count - 1]):
            frames = create_pyav().frames(path, indices).numpy()
            assert all(np.array_equal(f, reference[i]) for f, i in zip(frames, indices)), (case, indices)
        assert min(calls) < max(calls), case  # it did back off


def test_decord_hands_what_it_cannot_decode_to_pyav(real_world_files):
    from videossl.data.decode import decord_cannot

    decoder = decoder_for("decord")
    reasons = {case: decord_cannot(decoder.stream_info(Path(found))) for case, found in real_world_files.items()
               if not found.startswith("skip: ")}
    for case in ("vfr_mp4", "bframes", "rotated_90", "vp9_webm"):
        assert reasons.get(case, None) is None, case
    if "av1_mkv" in reasons:  # decord 0.6's FFmpeg 4.1 has no AV1 decoder
        assert reasons["av1_mkv"] == "decord's FFmpeg has no av1 decoder"
    if "hevc_mp4" in reasons:
        assert "HEVC" in reasons["hevc_mp4"]
    if "h264_10bit" in reasons:
        assert "10-bit" in reasons["h264_10bit"]


def test_stream_info_names_codec_depth_and_rotation(real_world_files):
    decoder = create_pyav()
    expected = {"vfr_mkv": ("h264", 8, 0), "rotated_270": ("h264", 8, 270), "vp9_webm": ("vp9", 8, 0),
                "rotated_webm": ("vp9", 8, 270),
                "av1_mkv": ("av1", 8, 0), "hevc_10bit": ("hevc", 10, 0), "h264_10bit": ("h264", 10, 0)}
    for case, want in expected.items():
        path = case_path(real_world_files, case)
        info = decoder.stream_info(path)
        assert (info.codec, info.bits, info.rotation) == want, case


@pytest.mark.parametrize("backend", ["pyav", "torchcodec", "decord"])
def test_a_codec_the_backend_cannot_decode_is_one_clear_line(real_world_files, monkeypatch, backend):
    """Where a backend's FFmpeg lacks the decoder (simulated: only one backend has an AV1 decoder), the error
    names the codec and the backend that can."""
    from videossl.data import decode, video_index
    from videossl.data.decode import DecodeError

    path = case_path(real_world_files, "av1_mkv")
    decoder = decoder_for(backend)
    if not decode.DECODERS["torchcodec"].is_available():
        pytest.skip("torchcodec does not load here: no backend left to name")

    able = "pyav" if backend == "torchcodec" else "torchcodec"

    def fake(name, codec):  # only `able` has an AV1 decoder
        return name == able if codec == "av1" else True

    monkeypatch.setattr(decode, "can_decode", fake)
    monkeypatch.setattr(video_index, "can_decode", fake)
    with pytest.raises(DecodeError) as info:
        decoder.frames(path, [0])
    message = str(info.value)
    assert message.startswith(f"{path}: {backend} cannot decode av1 video") and "\n" not in message
    assert f"decoders that can: {able}" in message


# ------------------------------------------------------------------------------------------------ readers


def _touch(root: Path, *names: str) -> None:
    for name in names:
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(b"")


def test_kinetics_reader_matches_any_extension(tmp_path):
    from videossl.data.datasets import read_dataset

    (tmp_path / "train.csv").write_text("label,youtube_id,time_start,time_end,split\n"
                                        "abseiling,aaa,7,17,train\nabseiling,bbb,0,10,train\n"
                                        "air drumming,ccc,5,15,train\nair drumming,ddd,3,13,train\n"
                                        "air drumming,eee,1,11,train\nabseiling,fff,2,12,train\n")
    _touch(tmp_path / "train", "abseiling/aaa_000007_000017.webm", "abseiling/bbb_000000_000010.mkv",
           "air_drumming/ccc_5_15.mp4",  # downloaders that do not pad
           "air_drumming/eee_000001_000011.webm", "air_drumming/eee_000001_000011.mp4",  # both: .mp4 wins
           "abseiling/fff_000002_000012.txt")  # not a video
    names = [Path(e.path).relative_to(tmp_path / "train").as_posix()
             for e in read_dataset("kinetics", str(tmp_path), "train").entries]
    assert names == ["abseiling/aaa_000007_000017.webm", "abseiling/bbb_000000_000010.mkv",
                     "air_drumming/ccc_5_15.mp4", "air_drumming/ddd_000003_000013.mp4",  # missing: the .mp4 name
                     "air_drumming/eee_000001_000011.mp4", "abseiling/fff_000002_000012.mp4"]
    _touch(tmp_path / "train", "abseiling/aaa.mkv")
    untrimmed = read_dataset("kinetics", str(tmp_path), "train", trimmed=False).entries
    assert untrimmed[0].path == str(tmp_path / "train/abseiling/aaa.mkv") and untrimmed[0][2:] == (7.0, 17.0)


def test_ssv2_ucf101_and_hmdb51_readers_match_any_extension(tmp_path):
    from videossl.data.datasets import read_dataset

    (tmp_path / "something-something-v2-labels.json").write_text('{"Opening something": "0"}')
    (tmp_path / "something-something-v2-train.json").write_text(
        '[{"id": "7", "template": "Opening [something]"}, {"id": "8", "template": "Opening [something]"}]')
    _touch(tmp_path, "7.mp4")
    assert [Path(e.path).name for e in read_dataset("ssv2", str(tmp_path), "train").entries] == ["7.mp4", "8.webm"]

    ucf = tmp_path / "ucf"
    (ucf / "classInd.txt").parent.mkdir()
    (ucf / "classInd.txt").write_text("1 ApplyEyeMakeup\n")
    (ucf / "trainlist01.txt").write_text("ApplyEyeMakeup/v_a_g01_c01.avi 1\nApplyEyeMakeup/v_a_g01_c02.avi 1\n")
    _touch(ucf, "ApplyEyeMakeup/v_a_g01_c01.mp4", "ApplyEyeMakeup/v_a_g01_c02.avi")
    assert [Path(e.path).name for e in read_dataset("ucf101", str(ucf), "train", 1).entries] == [
        "v_a_g01_c01.mp4", "v_a_g01_c02.avi"]

    hmdb = tmp_path / "hmdb"
    (hmdb / "splits").mkdir(parents=True)
    (hmdb / "splits" / "kick_ball_test_split1.txt").write_text("a.avi 1 \nb.avi 1 \n")
    _touch(hmdb, "kick_ball/a.mkv")
    assert [Path(e.path).name for e in read_dataset("hmdb51", str(hmdb), "train", 1).entries] == ["a.mkv", "b.avi"]


if __name__ == "__main__":  # the fixture writer, in a fresh process (see the module docstring)
    print(json.dumps(write_all(Path(sys.argv[1]))))
