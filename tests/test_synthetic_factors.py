"""The factor dataset (issue 23): independent labels, exact reversal, the layout the csv reader reads, the cache."""
from __future__ import annotations

import json

import numpy as np
import pytest
from scipy.stats import chi2_contingency

from omegaconf import OmegaConf

from videossl.data import synthetic_factors as sf
from videossl.data.build import build_index
from videossl.data.config import DataConfig
from videossl.data.datasets import read_dataset
from videossl.data.decode import create_decoder
from videossl.data.synthetic_factors_scenes import APPEARANCES, ARROWS, MOTIONS, render_factor_video
from videossl.errors import UserError
from videossl.eval.config import load_eval_config
from videossl.eval.features import read_split

TINY = dict(num_pool=2, num_train=6, num_test=4, size=32)  # default fps and lengths: what data.format reads


@pytest.fixture(scope="module")
def tiny_root(tmp_path_factory):
    return sf.make_synthetic_factors(tmp_path_factory.mktemp("factors") / "tiny", **TINY, workers=1, progress=False)


def test_factors_are_independent_on_a_few_hundred_videos():
    """No factor predicts another better than chance: a lookup table (majority class of B for each value of A)
    fitted on 300 videos scores within 3 standard errors of chance on 300 others, and chi-square finds no link."""
    jobs = sf.plan_labels(0, 600, 0, 16, 2.0, 2.5, seed=3)
    labels = {f: np.array([sf.CLASSES[f].index(getattr(j, f)) for j in jobs]) for f in sf.FACTORS}
    for f in sf.FACTORS:  # balanced
        assert np.bincount(labels[f]).min() == np.bincount(labels[f]).max() == 600 // len(sf.CLASSES[f])
    for a in sf.FACTORS:
        for b in sf.FACTORS:
            if a == b:
                continue
            fit, held = slice(0, 300), slice(300, 600)
            table = np.zeros((len(sf.CLASSES[a]), len(sf.CLASSES[b])))
            np.add.at(table, (labels[a][fit], labels[b][fit]), 1)
            guess = table.argmax(1)[labels[a][held]]
            accuracy, chance = (guess == labels[b][held]).mean(), 1 / len(sf.CLASSES[b])
            assert accuracy < chance + 3 * np.sqrt(chance * (1 - chance) / 300), (a, b, accuracy)
            counts = np.zeros_like(table)
            np.add.at(counts, (labels[a], labels[b]), 1)
            assert chi2_contingency(counts).pvalue > 0.001, (a, b)
    # the check can fail: a motion that follows the appearance is caught
    tied = np.zeros((len(APPEARANCES), len(MOTIONS)))
    np.add.at(tied, (labels["appearance"], labels["appearance"] % len(MOTIONS)), 1)
    assert chi2_contingency(tied + 1).pvalue < 1e-6


def test_every_label_combination_renders_a_visible_moving_object():
    for i, (appearance, motion) in enumerate(zip(APPEARANCES, MOTIONS)):
        frames, audio = render_factor_video(appearance, motion, "forward", np.random.default_rng(i), 48, 8, 2.0)
        assert frames.shape == (16, 48, 48, 3) and frames.dtype == np.uint8 and audio.shape == (32000,)
        blocks = frames.astype(np.float32).reshape(16, 12, 4, 12, 4, 3).mean(axis=(2, 4))  # 4x4 means: noise / 4
        assert np.abs(np.diff(blocks, axis=0)).max() > 20, motion  # the object moves (noise alone: < 3 levels)
        assert (np.abs(frames.astype(np.float32) - np.median(frames, axis=(1, 2), keepdims=True)).max(-1) > 40).mean() > 0.03
    with pytest.raises(ValueError, match="unknown factor labels"):
        render_factor_video("blob", "bounce", "forward", np.random.default_rng(0))


def test_reversed_video_is_the_frame_reversal_of_its_forward_twin(tmp_path):
    job = sf.FactorJob("a/fwd.mp4", "star", "split", "forward", 1, 7, 2.0)
    twin = job._replace(relpath="a/rev.mp4", arrow="reversed")
    # in memory: exact reversal of frames and sound (same seed, the arrow applied after every random draw)
    rng = lambda: np.random.default_rng(sf.video_seed(0, 1, 7))  # noqa: E731
    forward, forward_audio = render_factor_video("star", "split", "forward", rng(), 48, 8, 2.0)
    backward, backward_audio = render_factor_video("star", "split", "reversed", rng(), 48, 8, 2.0)
    assert np.array_equal(backward, forward[::-1]) and np.array_equal(backward_audio, forward_audio[::-1])
    # on disk, through H.264: decoded frames match reversed within codec tolerance, and the arrow shows
    for j in (job, twin):
        sf.render_job(j, str(tmp_path), 48, 8, seed=0)
    decoder = create_decoder("pyav")
    count = decoder.probe(tmp_path / "a/fwd.mp4").num_frames
    assert count == 16 == decoder.probe(tmp_path / "a/rev.mp4").num_frames
    fwd = decoder.frames(tmp_path / "a/fwd.mp4", list(range(count))).float()
    rev = decoder.frames(tmp_path / "a/rev.mp4", list(range(count))).float()
    blur = lambda x: x.reshape(16, 12, 4, 12, 4, 3).mean(dim=(2, 4))  # noqa: E731  (4x4 means: the codec's noise / 4)
    reversal_error = (blur(rev) - blur(fwd.flip(0))).abs()
    unreversed_error = (blur(rev) - blur(fwd)).abs()
    # within codec tolerance: a small mean difference and no block off by more than 20 levels; not reversed: objects
    # sit elsewhere, so many blocks are
    assert reversal_error.mean() < 3.0 and (reversal_error > 20).float().mean() < 0.002, reversal_error.max()
    assert (unreversed_error > 20).float().mean() > 0.02


def test_tiny_dataset_layout_and_factor_csvs(tiny_root):
    root = tiny_root
    info = json.loads((root / "synthetic_factors.json").read_text())
    assert info["counts"] == {"pool": 2, "train": 6, "test": 4}
    assert info["factors"] == {"appearance": list(APPEARANCES), "motion": list(MOTIONS), "arrow": list(ARROWS)}
    rows = (root / "labels.csv").read_text().splitlines()
    assert rows[0] == "split,path,appearance,motion,arrow" and len(rows) == 13
    labels = {r.split(",")[1]: r.split(",")[2:] for r in rows[1:]}
    assert all((root / path).is_file() for path in labels) and len(list((root / "pool").glob("*.mp4"))) == 2
    for k, factor in enumerate(sf.FACTORS):
        folder = root / "factors" / factor
        assert (folder / "classes.txt").read_text().split() == list(sf.CLASSES[factor])
        for split, count in (("train", 6), ("test", 4)):
            index = read_dataset("csv", str(folder), split=split)
            assert len(index.entries) == count and index.class_names == list(sf.CLASSES[factor])
            for entry in index.entries:
                rel = f"{split}/{entry.path.rsplit('/', 1)[1]}"
                assert (folder / f"../../{rel}").resolve().is_file()
                assert index.class_names[entry.label] == labels[rel][k]


def test_ensure_caches_by_parameters(tmp_path, monkeypatch):
    monkeypatch.setenv("VIDEOSSL_CACHE", str(tmp_path / "cache"))
    small = dict(num_pool=1, num_train=1, num_test=1, size=16, fps=4, min_seconds=1.0, max_seconds=1.0)
    root = sf.ensure_synthetic_factors(**small, workers=1, progress=False)
    assert root.parent == tmp_path / "cache" and root.name.startswith("synthetic_factors-")
    calls = []
    monkeypatch.setattr(sf, "make_synthetic_factors", lambda *a, **k: calls.append(1))
    assert sf.ensure_synthetic_factors(**small) == root and not calls  # cached: nothing generated
    with pytest.raises(UserError, match="unknown parameters"):
        sf.ensure_synthetic_factors(colour="red")


def test_data_format_reads_the_pool_for_pretraining_and_a_factor_for_evaluation(tiny_root):
    sizes = [f"data.synthetic.{k}={v}" for k, v in TINY.items()]
    pretrain = OmegaConf.merge(OmegaConf.structured(DataConfig), OmegaConf.from_dotlist(
        ["format=synthetic_factors", f"root={tiny_root}", "split=pool"] + [s[len("data."):] for s in sizes]))
    pool = build_index(pretrain, "pool")
    assert len(pool.entries) == 2 and all(e.label == -1 for e in pool.entries)
    rows = [r.split(",") for r in (tiny_root / "labels.csv").read_text().splitlines()[1:]]
    for factor in sf.FACTORS:
        cfg = load_eval_config("random:tiny_r3d", None, ["data.format=synthetic_factors", f"data.factor={factor}",
                                                          f"data.root={tiny_root}", *sizes])
        test = read_split(cfg.data, "test", 1)
        names = [test.class_names[e.label] for e in test.entries]
        column = 2 + sf.FACTORS.index(factor)
        assert names == [r[column] for r in rows if r[0] == "test"]
    cfg = load_eval_config("random:tiny_r3d", None, ["data.format=synthetic_factors", f"data.root={tiny_root}", *sizes])
    with pytest.raises(UserError, match="data.factor is empty"):
        read_split(cfg.data, "train", 1)
    with pytest.raises(UserError, match="data.factor"):
        load_eval_config("random:tiny_r3d", None, ["data.format=synthetic_factors", "data.factor=colour"])
