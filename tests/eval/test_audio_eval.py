"""Audio linear probe (ESC-50 folds, class-stratified hold-out, raw vs log-mel input) and audio-visual
retrieval / synchronisation metrics, end to end on tiny files written here."""
import wave

import numpy as np
import pytest
import torch

from videossl.errors import UserError
from videossl.data.av_datasets import read_esc50_folds as read_esc50  # the data layer's reader, used by the eval
from videossl.eval.audio import (EvenAudioWindows, audio_input_kind, load_audio_encoder, load_audio_eval_config,
                                 run_audio_linear, split_by_class)
from videossl.eval.av_retrieval import cross_modal_recall, sync_accuracy

TONES = {"low": 300.0, "mid": 1200.0, "high": 4000.0}


def _write_wav(path, freq, rng, seconds=1.0, rate=16000):
    t = np.arange(int(seconds * rate)) / rate
    signal = 0.4 * np.sin(2 * np.pi * freq * (1 + rng.uniform(-0.03, 0.03)) * t) + rng.normal(0, 0.02, t.shape)
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(signal, -1, 1) * 32767).astype(np.int16).tobytes())


@pytest.fixture(scope="module")
def esc50_root(tmp_path_factory):
    """An ESC-50-shaped set: 3 tone classes x 2 folds x 3 clips, meta/esc50.csv + audio/*.wav."""
    root = tmp_path_factory.mktemp("esc50")
    (root / "audio").mkdir()
    (root / "meta").mkdir()
    rng = np.random.default_rng(0)
    rows = ["filename,fold,target,category,esc10,src_file,take"]
    for target, (name, freq) in enumerate(TONES.items()):
        for fold in (1, 2):
            for k in range(3):
                filename = f"{fold}-{target}{k}-A-{target}.wav"
                _write_wav(root / "audio" / filename, freq, rng)
                rows.append(f"{filename},{fold},{target},{name},False,x,A")
    (root / "meta" / "esc50.csv").write_text("\n".join(rows) + "\n")
    return root


def test_esc50_folds(esc50_root):
    train, test = read_esc50(esc50_root, test_fold=2)
    assert train.class_names == ["low", "mid", "high"]
    assert len(train.entries) == 9 and len(test.entries) == 9
    assert all("/2-" in e.path for e in test.entries) and not any("/2-" in e.path for e in train.entries)
    with pytest.raises(UserError, match="test_fold"):
        read_esc50(esc50_root, test_fold=7)


@pytest.mark.parametrize("encoder", ["random:tiny_audio_resnet", "random:tiny_cpc_encoder"])
def test_linear_probe_separates_tones(esc50_root, encoder, tmp_path):
    cfg = load_audio_eval_config(encoder, None, ["data.format=esc50", f"data.root={esc50_root}", "data.test_fold=2",
                                                 "data.seconds=0.64", "data.num_windows=2", "linear.epochs=30",
                                                 f"out_dir={tmp_path}"])
    result = run_audio_linear(cfg)
    assert result["num_train"] == 9 and result["num_test"] == 9 and result["num_classes"] == 3
    assert result["input"] == ("raw" if "cpc" in encoder else "logmel")
    assert result["top1"] >= 2 / 3  # pure tones are easy even for random features; chance is 1/3
    assert (tmp_path / "audio_linear.json").is_file()


def test_class_stratified_hold_out():
    from videossl.data.datasets import DatasetIndex, VideoEntry

    index = DatasetIndex([VideoEntry(f"{c}{k}.wav", c) for c in range(3) for k in range(10)], ["a", "b", "c"])
    train, test = split_by_class(index, 0.3, seed=0)
    assert sorted(e.label for e in test.entries) == [0] * 3 + [1] * 3 + [2] * 3
    assert not {e.path for e in train.entries} & {e.path for e in test.entries}


def test_windows_are_evenly_spaced_inside_the_file():
    from videossl.data.sampling import VideoMeta

    meta = VideoMeta(num_frames=1, fps=1.0, duration=5.0, height=0, width=0, has_audio=True)
    views = EvenAudioWindows(1.0, 4)(meta, np.random.default_rng(0)).views
    starts = [v.time_range[0] for v in views]
    assert np.allclose(np.diff(starts), 1.0) and starts[0] >= 0 and views[-1].time_range[1] <= 5.0


def test_encoder_checks():
    assert audio_input_kind(load_audio_encoder("random:tiny_cpc_encoder")) == "raw"
    with pytest.raises(UserError, match="audio tower"):
        load_audio_encoder("random:tiny_r3d")
    with pytest.raises(UserError, match="not found"):
        load_audio_encoder("/nonexistent/encoder_audio.pt")


def test_cross_modal_recall():
    perfect = cross_modal_recall(torch.eye(5), ks=(1, 5))
    assert perfect["v2a_R@1"] == 1.0 and perfect["a2v_R@1"] == 1.0
    constant = cross_modal_recall(torch.zeros(5, 5), ks=(1, 5))
    assert constant["v2a_R@1"] == 0.0 and constant["v2a_R@5"] == 1.0
    scores = torch.eye(4)
    scores[0] = torch.tensor([0.5, 0.9, 0.0, 0.0])  # clip 0 prefers audio 1: its own audio is second
    r = cross_modal_recall(scores, ks=(1, 2))
    assert r["v2a_R@1"] == 0.75 and r["v2a_R@2"] == 1.0
    # audio 1's column is (0.9, 1, 0, 0): its own clip still wins; audio 0's column (0.5, 0, 0, 0) too
    assert r["a2v_R@1"] == 1.0


class _DotScores:
    def pair_scores(self, video, audio):
        return video.flatten(1) @ audio.flatten(1).T


def test_sync_accuracy_counts_ties_as_half():
    clips = torch.eye(4)
    synced, offset = torch.eye(4), torch.zeros(4, 4)
    assert sync_accuracy(_DotScores(), (clips, synced), offset) == 1.0
    assert sync_accuracy(_DotScores(), (clips, offset), offset) == 0.5


def test_av_retrieval_and_sync_on_a_trained_run(tiny_pool, tiny_overrides, tmp_path):
    from videossl.config import load_pretrain_config
    from videossl.engine.trainer import pretrain
    from videossl.eval.av_retrieval import run_av_retrieval, run_av_sync

    overrides = tiny_overrides(tiny_pool, tmp_path / "run", frames=4, extra=["method.name=avid", "train.plots=false"])
    run_dir = pretrain(load_pretrain_config(None, overrides))
    assert (run_dir / "encoder_audio.pt").is_file()
    data = ["data.format=folder", f"data.root={tiny_pool.parent}"]
    result = run_av_retrieval(run_dir, split="test", data_overrides=data, out_dir=tmp_path / "eval")
    assert result["num_videos"] == 12
    assert all(0.0 <= result[f"{d}_R@{k}"] <= 1.0 for d in ("v2a", "a2v") for k in (1, 5, 10))
    assert result["v2a_R@10"] >= result["v2a_R@1"]
    sync = run_av_sync(run_dir, 0.5, split="test", max_videos=4, data_overrides=data)
    assert 0.0 <= sync["sync_accuracy"] <= 1.0 and sync["num_videos"] == 4
    audio = run_audio_linear(load_audio_eval_config(str(run_dir / "encoder_audio.pt"), None, [
        "data.format=folder", f"data.root={tiny_pool.parent}", "data.num_windows=1", "linear.epochs=2"]))
    assert audio["num_test"] == 12
