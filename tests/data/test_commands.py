"""``videossl data make-synthetic | check | prepare`` on tiny files."""
from __future__ import annotations

import argparse
import shutil
import time
from pathlib import Path

import pytest

from videossl.data import commands
from videossl.data.decode import create_decoder
from videossl.errors import UserError


COMMANDS = {"make-synthetic": (commands.add_make_synthetic_arguments, commands.run_make_synthetic),
            "check": (commands.add_check_arguments, commands.run_check),
            "prepare": (commands.add_prepare_arguments, commands.run_prepare)}


def _args(name: str, argv: list[str]) -> argparse.Namespace:
    add_arguments, _ = COMMANDS[name]
    parser = argparse.ArgumentParser()
    add_arguments(parser)
    return parser.parse_args(argv)


def _run(name: str, argv: list[str]) -> int:
    return COMMANDS[name][1](_args(name, argv))


def test_make_synthetic_command(tmp_path, capsys):
    code = _run("make-synthetic", [str(tmp_path / "s"), "--num-pool", "2", "--num-train", "2", "--num-test", "1",
                                   "--size", "16", "--fps", "4", "--min-seconds", "1", "--max-seconds", "1",
                                   "--workers", "1"])
    assert code == 0 and "5 videos" in capsys.readouterr().out
    assert len(list((tmp_path / "s").rglob("*.mp4"))) == 5


def test_check_reports_every_bad_file_and_exit_code(tiny_videos, capsys):
    code = _run("check", [str(tiny_videos.root), "--decoder", "pyav", "--timeout", "30"])
    out = capsys.readouterr().out
    bad_lines = [line for line in out.splitlines() if line.startswith("BAD ")]
    expected = {tiny_videos.corrupt, tiny_videos.zero_byte, tiny_videos.truncated, tiny_videos.text}
    assert code == 1 and len(bad_lines) == len(expected)
    for path in expected:
        assert any(line.startswith(f"BAD {path}: ") for line in bad_lines), path
    assert "zero-byte" in out and "truncated" in out
    assert f"checked {len(expected) + len(tiny_videos.good)} files" in out


def test_check_all_good_from_a_csv_manifest(tiny_videos, tmp_path, capsys):
    manifest = tmp_path / "good.csv"
    manifest.write_text("path,label\n" + "".join(f"{p},a\n" for p in tiny_videos.good))
    assert _run("check", [str(manifest), "--format", "csv", "--decoder", "decord"]) == 0
    assert "0 bad" in capsys.readouterr().out


def test_check_kills_a_hanging_decode(tiny_videos, monkeypatch):
    real = commands.check_file

    def hang_on_silent(path, decoder_name):
        if path.endswith("silent.mp4"):
            time.sleep(60)
        return real(path, decoder_name)

    monkeypatch.setattr(commands, "check_file", hang_on_silent)  # fork: workers inherit the patch
    paths = [str(tiny_videos.silent), str(tiny_videos.av_clip), str(tiny_videos.zero_byte)]
    started = time.monotonic()
    bad = commands.check_files(paths, "pyav", timeout=1.5, workers=2, progress=False)
    assert set(bad) == {str(tiny_videos.silent), str(tiny_videos.zero_byte)}
    assert "longer than 1.5 s" in bad[str(tiny_videos.silent)]
    assert time.monotonic() - started < 30  # the scan went on without waiting for the hang


def test_check_unknown_decoder_is_a_user_error(tiny_videos):
    with pytest.raises(UserError, match="unknown decoder"):
        _run("check", [str(tiny_videos.root), "--decoder", "nope"])


@pytest.mark.skipif(shutil.which("ffmpeg") is None, reason="needs the ffmpeg binary")
def test_prepare_reencodes_resumes_and_writes_a_manifest(tiny_videos, tmp_path, capsys):
    source = tmp_path / "src"
    for label, path in (("talk", tiny_videos.av_clip), ("walk", tiny_videos.silent), ("walk", tiny_videos.corrupt)):
        (source / label).mkdir(parents=True, exist_ok=True)
        shutil.copy(path, source / label / path.name)
    out = tmp_path / "out"
    code = _run("prepare", [str(source), str(out), "--short-side", "16", "--fps", "8", "--gop", "4", "--workers", "2"])
    assert code == 1 and "FAILED" in capsys.readouterr().out  # the corrupt copy fails, the rest goes on
    rows = (out / "manifest.csv").read_text().splitlines()
    assert rows == ["path,label", "talk/av_clip.mp4,talk", "walk/silent.mp4,walk"]
    decoder = create_decoder("pyav")
    clip, wide = decoder.probe(out / "talk/av_clip.mp4"), decoder.probe(out / "walk/silent.mp4")
    assert (clip.height, clip.width, clip.fps, clip.has_audio) == (16, 16, 8.0, True)
    assert (wide.height, wide.width) == (16, 24) and abs(clip.num_frames - 24) <= 1  # 3 s at 8 fps
    import av

    with av.open(str(out / "talk/av_clip.mp4")) as container:
        keyframes = [p.is_keyframe for p in container.demux(video=0) if p.size]
    assert sum(keyframes) >= len(keyframes) // 4  # a keyframe every 4 frames
    stamp = (out / "talk/av_clip.mp4").stat().st_mtime_ns
    _run("prepare", [str(source), str(out), "--short-side", "16", "--fps", "8", "--gop", "4"])
    assert (out / "talk/av_clip.mp4").stat().st_mtime_ns == stamp  # resumed: done files are skipped
    assert not list(out.rglob(".*partial*"))


def test_inputs_must_exist(tmp_path):
    with pytest.raises(UserError, match="no such file"):
        commands.list_inputs(str(tmp_path / "nothing"))
    with pytest.raises(UserError, match="no video files"):
        commands.list_inputs(str(tmp_path))
    assert Path(tmp_path).exists()
