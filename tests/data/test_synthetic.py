"""The synthetic dataset: layout and annotations, determinism, caching, atomic writes, dynamics and
audio-visual synchrony."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from videossl.data import synthetic, synthetic_scenes
from videossl.data.decode import create_decoder
from videossl.data.synthetic import CLASSES, IRREVERSIBLE, SAMPLE_RATE, ensure_synthetic, make_synthetic
from videossl.data.synthetic_scenes import SCENES, render_audio, render_video
from videossl.errors import UserError

TINY = dict(num_pool=6, num_train=12, num_test=12, size=32, fps=8, min_seconds=1.0, max_seconds=1.5)


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory) -> Path:
    return make_synthetic(tmp_path_factory.mktemp("syn") / "tiny", **TINY, workers=2, progress=False)


def test_layout_and_annotations(tiny_root):
    info = json.loads((tiny_root / "synthetic.json").read_text())
    assert info["classes"] == list(CLASSES) and len(CLASSES) >= 10 and len(IRREVERSIBLE) >= 4
    assert info["params"]["size"] == 32 and info["counts"] == {"pool": 6, "train": 12, "test": 12}
    assert len(list((tiny_root / "pool").glob("*.mp4"))) == 6
    for split in ("train", "test"):
        files = sorted((tiny_root / split).glob("*/*.mp4"))
        assert len(files) == 12 and {f.parent.name for f in files} == set(CLASSES)  # balanced: one per class
        ucf = (tiny_root / "splits" / f"{split}list01.txt").read_text().split("\n")[:-1]
        assert sorted(tiny_root / split / line.split()[0] for line in ucf) == files
        rows = (tiny_root / "kinetics" / f"{split}.csv").read_text().splitlines()
        assert rows[0] == "label,youtube_id,time_start,time_end,split" and len(rows) == 13
        for row in rows[1:]:
            label, youtube_id, start, end, row_split = row.split(",")
            assert (tiny_root / split / label / f"{youtube_id}_{int(start):06d}_{int(end):06d}.mp4").exists()
            assert len(youtube_id) == 11 and row_split == split
    class_lines = (tiny_root / "splits" / "classInd.txt").read_text().splitlines()
    assert class_lines == [f"{i + 1} {c}" for i, c in enumerate(CLASSES)]


def test_files_are_real_videos_with_audio(tiny_root):
    decoder = create_decoder("pyav")
    path = next((tiny_root / "train").glob("*/*.mp4"))
    meta = decoder.probe(path)
    assert meta.has_audio and (meta.height, meta.width, meta.fps) == (32, 32, 8.0)
    assert 8 <= meta.num_frames <= 12
    assert decoder.frames(path, [0, meta.num_frames - 1]).shape == (2, 32, 32, 3)
    assert decoder.audio(path, 0.0, 1.0, SAMPLE_RATE).shape == (1, SAMPLE_RATE)


def test_readers_find_every_file(tiny_root):
    datasets = pytest.importorskip("videossl.data.datasets")
    ucf = datasets.read_dataset("ucf101", str(tiny_root), split="test", video_root=str(tiny_root / "test"))
    kinetics = datasets.read_dataset("kinetics", str(tiny_root), split="train", annotations=str(tiny_root / "kinetics"))
    folder = datasets.read_dataset("folder", str(tiny_root), split="train")
    for index in (ucf, kinetics, folder):
        assert all(Path(e.path).exists() for e in index.entries) and len(index.entries) == 12
        assert list(index.class_names) == list(CLASSES)  # alphabetical: label ids agree across readers
    by_path = {e.path: e.label for e in folder.entries}
    assert all(by_path[e.path] == e.label for e in kinetics.entries)


def test_render_is_seeded_and_appearance_is_random():
    a, audio_a = render_video("orbit", np.random.default_rng(3), 32, 8, 1.0)
    b, audio_b = render_video("orbit", np.random.default_rng(3), 32, 8, 1.0)
    c, _ = render_video("orbit", np.random.default_rng(4), 32, 8, 1.0)
    assert a.shape == (8, 32, 32, 3) and a.dtype == np.uint8 and audio_a.shape == (SAMPLE_RATE,)
    assert np.array_equal(a, b) and np.array_equal(audio_a, audio_b)
    assert np.abs(a[0].astype(float).mean((0, 1)) - c[0].astype(float).mean((0, 1))).max() > 5
    with pytest.raises(ValueError, match="unknown synthetic class 'nope'"):
        render_video("nope", np.random.default_rng(0))


def _scene(label: str, seed: int = 0, seconds: float = 3.0, fps: int = 16, size: int = 64):
    rng = np.random.default_rng(seed)
    t = np.arange(int(seconds * fps)) / fps
    look = lambda shapes=synthetic_scenes.SHAPES, striped=None: (  # noqa: E731
        "circle", np.full(3, 200.0, np.float32), None, 1.0)
    return SCENES[label](rng, t, size, look), t


def test_irreversible_dynamics():
    for seed in range(3):
        bounce, _ = _scene("bounce", seed)
        strengths = [e[1] for e in bounce.events]
        assert len(strengths) >= 2 and all(b < a for a, b in zip(strengths, strengths[1:]))  # energy loss
        fall, _ = _scene("fall_stop", seed)
        assert len(fall.events) == 1
        y = fall.sprites[0].cy
        assert np.allclose(y[-5:], y[-1])  # at rest at the end
        expand, _ = _scene("expand", seed)
        assert np.all(np.diff(expand.sprites[0].radius) >= 0) and expand.sprites[0].alpha[-1] < expand.sprites[0].alpha[0]
        fade, _ = _scene("fade_out", seed)
        assert fade.sprites[0].alpha[-1] < 0.5 * fade.sprites[0].alpha[0]
        collide, t = _scene("collide", seed)
        gap = np.hypot(collide.sprites[0].cx - collide.sprites[1].cx, collide.sprites[0].cy - collide.sprites[1].cy)
        when = collide.events[0][0]
        before, after = t < when - 0.1, t > when + 0.1
        speed = np.abs(np.diff(gap)) * 16
        assert speed[before[1:]].mean() > 1.2 * speed[after[1:]].mean()  # they rebound slower than they came


def test_audio_bursts_are_synchronised_with_impacts():
    for label in ("bounce", "collide", "split"):
        scene, _ = _scene(label, seed=1)
        wave = render_audio(scene, np.random.default_rng(0), 3.0, 64, 16)
        loud = np.abs(wave) > 0.1
        for when, strength, _ in scene.events:
            if strength < 0.3 or when > 2.8:
                continue
            start = int(when * SAMPLE_RATE)
            assert loud[start : start + 80].any(), (label, when)  # within 5 ms of the impact
            assert not loud[max(0, start - 400) : start - 80].any() or label == "bounce"
        quiet, _ = _scene("rotate", seed=1)
        assert np.abs(render_audio(quiet, np.random.default_rng(0), 3.0, 64, 16)).max() < 0.1


def test_pitch_depends_on_size():
    assert synthetic_scenes._pitch(3.0, 64) > synthetic_scenes._pitch(8.0, 64)


def test_ensure_synthetic_caches_and_regenerates(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEOSSL_CACHE", str(tmp_path / "cache"))
    small = dict(num_pool=2, num_train=2, num_test=2, size=16, fps=4, min_seconds=1.0, max_seconds=1.0)
    root = ensure_synthetic(**small, workers=1, progress=False)
    assert root.parent == tmp_path / "cache" and root.name.startswith("synthetic-")
    stamp = (root / "synthetic.json").stat().st_mtime_ns
    calls = []
    monkeypatch.setattr(synthetic, "make_synthetic", lambda *a, **k: calls.append(1))
    assert ensure_synthetic(**small, progress=False) == root and not calls  # cached: nothing generated
    monkeypatch.undo()
    monkeypatch.setenv("VIDEOSSL_CACHE", str(tmp_path / "cache"))
    other = ensure_synthetic(**{**small, "seed": 1}, workers=1, progress=False)
    assert other != root and (root / "synthetic.json").stat().st_mtime_ns == stamp
    # an explicit root with other parameters is regenerated in place
    regenerated = ensure_synthetic(root, **{**small, "num_train": 3}, workers=1, progress=False)
    assert regenerated == root and json.loads((root / "synthetic.json").read_text())["counts"]["train"] == 3
    with pytest.raises(UserError, match="unknown parameters"):
        ensure_synthetic(colour="red")


def _ensure_and_log(root: str, log: str, barrier) -> None:
    """Child process: record every generation in ``log``, start with the other child, ensure the dataset."""
    original = synthetic.make_synthetic

    def logged(*args, **kwargs):
        with open(log, "a") as f:
            f.write("generated\n")
        return original(*args, **kwargs)

    synthetic.make_synthetic = logged
    barrier.wait()
    ensure_synthetic(root, num_pool=6, num_train=2, num_test=2, size=16, fps=4, min_seconds=1.0, max_seconds=1.0,
                     workers=1, progress=False)


def test_processes_asking_for_one_dataset_at_once_generate_it_once(tmp_path):
    """DDP ranks start together: the second waits for the first instead of rendering and swapping the folder."""
    import multiprocessing

    ctx = multiprocessing.get_context("fork")
    barrier, log, root = ctx.Barrier(2), tmp_path / "generations.log", tmp_path / "synthetic"
    children = [ctx.Process(target=_ensure_and_log, args=(str(root), str(log), barrier)) for _ in range(2)]
    for child in children:
        child.start()
    for child in children:
        child.join(timeout=120)
    assert [child.exitcode for child in children] == [0, 0]
    assert log.read_text().splitlines() == ["generated"]
    assert json.loads((root / "synthetic.json").read_text())["counts"]["pool"] == 6


def test_killed_generation_leaves_nothing_that_looks_done(tmp_path, monkeypatch):
    def boom(job, *args):
        if job.index == 1:
            raise KeyboardInterrupt
        return real(job, *args)

    real = synthetic._render_job
    monkeypatch.setattr(synthetic, "_render_job", boom)
    target = tmp_path / "data"
    with pytest.raises(KeyboardInterrupt):
        make_synthetic(target, num_pool=3, num_train=0, num_test=0, size=16, fps=4, min_seconds=1.0,
                       max_seconds=1.0, workers=1, progress=False)
    assert not target.exists() and list(tmp_path.iterdir()) == []


def test_refuses_to_overwrite_other_data(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(UserError, match="not a synthetic dataset"):
        make_synthetic(tmp_path, num_pool=1, num_train=0, num_test=0, progress=False)
