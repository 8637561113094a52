"""``videossl bench learn``'s audio column: the audio tower of an audio-visual run against the same audio backbone
at random init, on a tiny fake run dir (no pretraining: ``encoder_audio.pt`` written by ``save_encoder``)."""
from __future__ import annotations

import argparse
import json

import pytest
import torch

from videossl.backbones import create_backbone, save_encoder
from videossl.bench import learn, learn_audio
from videossl.config import load_pretrain_config

# a non-default width: a baseline built from the recipe's audio_backbone name alone would have 128, not 64 features
AUDIO_KWARGS = {"width": 8}


@pytest.fixture
def audio_run(tmp_path, monkeypatch):
    """(cfg, run_dir, out): a tiny l3 config and a run dir holding a seeded ``encoder_audio.pt`` (tiny_audio_resnet
    at width 8)."""
    torch.set_num_threads(1)
    monkeypatch.setenv("VIDEOSSL_CACHE", str(tmp_path / "cache"))
    out = tmp_path / "out"
    run_dir = out / "l3_synthetic_tiny3d" / "pretrain"
    overrides = learn.recipe_overrides(True, out, None, None, []) + [f"train.run_dir={run_dir}", "train.seed=3"]
    cfg = load_pretrain_config(learn.RECIPES_DIR / "l3_synthetic_tiny3d.yaml", overrides)
    run_dir.mkdir(parents=True)
    torch.manual_seed(123)
    save_encoder(run_dir / "encoder_audio.pt", create_backbone("tiny_audio_resnet", **AUDIO_KWARGS),
                 "tiny_audio_resnet", AUDIO_KWARGS)
    return cfg, run_dir, out


def test_audio_overrides_mirror_the_video_eval_data_and_the_run_audio(audio_run):
    cfg, _, out = audio_run
    evaluation = learn_audio.audio_eval_overrides(cfg, tiny=True)
    assert "data.format=synthetic" in evaluation and f"data.root={out / 'synthetic-tiny'}" in evaluation
    assert {"data.synthetic.num_train=12", "data.synthetic.num_test=12", "data.synthetic.size=32"} <= set(evaluation)
    assert {"data.audio_rate=16000", "data.n_mels=64", "data.seconds=1.0", "seed=3"} <= set(evaluation)
    assert not any(o.startswith(("data.num_frames", "data.crop_size")) for o in evaluation)  # video-only keys
    resized = learn_audio.audio_eval_overrides(cfg, tiny=True, num_test=30)  # the video eval's --num-test
    assert "data.synthetic.num_test=30" in resized and "data.synthetic.num_test=12" not in resized


def test_audio_tower_and_its_random_init_are_probed_then_cached(audio_run, monkeypatch, capsys):
    cfg, run_dir, out = audio_run
    row = learn_audio.bench_audio(cfg, run_dir, tiny=True, out=out)
    for key in ("audio_linear_top1", "random_audio_linear_top1"):
        assert 0.0 <= row[key] <= 1.0, key
    assert row["audio_beats_random"] == (row["audio_linear_top1"] > row["random_audio_linear_top1"])
    assert row["audio_num_test"] == 12
    # the baseline is the tower's own backbone and kwargs, seeded with the run's seed
    [cache] = out.glob("random-audio-tiny_audio_resnet-*.json")
    random_file = cache.with_suffix("") / "encoder_audio.pt"
    saved = torch.load(random_file, weights_only=True)
    assert (saved["backbone"], saved["kwargs"], saved["num_features"]) == ("tiny_audio_resnet", AUDIO_KWARGS, 64)
    torch.manual_seed(3)
    expected = create_backbone("tiny_audio_resnet", **AUDIO_KWARGS).state_dict()
    assert all(torch.equal(saved["state_dict"][k], v) for k, v in expected.items())
    ssl = torch.load(run_dir / "encoder_audio.pt", weights_only=True)["state_dict"]
    assert not all(torch.equal(ssl[k], v) for k, v in expected.items() if v.is_floating_point())
    assert json.loads(cache.read_text())[0]["result"]["linear_top1"] == row["random_audio_linear_top1"]
    assert "audio linear probe" in capsys.readouterr().out

    # a rerun of the finished recipe reads both results from their caches
    def no_probe(*_):
        raise AssertionError("probed again")

    monkeypatch.setattr(learn_audio, "audio_top1", no_probe)
    assert learn_audio.bench_audio(cfg, run_dir, tiny=True, out=out) == row


def test_a_run_without_audio_tower_has_no_audio_numbers(audio_run):
    cfg, run_dir, out = audio_run
    (run_dir / "encoder_audio.pt").unlink()
    assert learn_audio.bench_audio(cfg, run_dir, tiny=True, out=out) == \
        {"audio_linear_top1": None, "random_audio_linear_top1": None, "audio_beats_random": None}


VIDEO = {"method": "m", "backbone": "b", "linear_top1": 0.5, "knn_top1": 0.4, "random_linear_top1": 0.3,
         "random_knn_top1": 0.2, "beats_random": True, "pretrain_minutes": 1.0, "steps": 10}


def test_table_has_audio_columns_and_old_rows_show_dashes():
    old = [{"recipe": "old", **VIDEO}]  # a row written before the audio column existed
    new = [{"recipe": "av", **VIDEO, "audio_linear_top1": 0.25, "random_audio_linear_top1": 0.125,
            "audio_beats_random": True}, {"recipe": "broken", "error": "boom"}]
    lines = learn.format_table(learn.merge_rows(old, new)).splitlines()
    header = [c.strip() for c in lines[0].strip("|").split("|")]
    assert header[7:10] == ["beats random", "audio linear (%)", "random-init audio (%)"]
    assert len(lines[1].strip("|").split("|")) == len(header)
    assert lines[2] == "| old | m | b | 50.0 | 40.0 | 30.0 | 20.0 | yes | - | - | 10 | 1.0 |"
    assert lines[3] == "| av | m | b | 50.0 | 40.0 | 30.0 | 20.0 | yes | 25.0 | 12.5 | 10 | 1.0 |"
    assert len(lines[4].strip("|").split("|")) == len(header) and "failed: boom" in lines[4]


def test_run_warns_separately_when_an_audio_tower_loses_to_random(tmp_path, monkeypatch, capsys):
    rows = {"l3_synthetic_tiny3d": {**VIDEO, "audio_linear_top1": 0.1, "random_audio_linear_top1": 0.3,
                                    "audio_beats_random": False},
            "simclr_synthetic_tiny3d": {**VIDEO, "audio_linear_top1": None, "random_audio_linear_top1": None,
                                        "audio_beats_random": None}}
    monkeypatch.setattr(learn, "bench_recipe", lambda recipe, *_: {"recipe": recipe.stem, **rows[recipe.stem]})
    parser = argparse.ArgumentParser()
    learn.add_arguments(parser)
    args = parser.parse_args(["--recipes", *rows, "--out", str(tmp_path / "out"), "--write-doc", str(tmp_path / "d.md")])
    assert learn.run(args) == 0
    printed = capsys.readouterr().out
    assert "WARNING: l3_synthetic_tiny3d: the audio tower does not beat its random initialisation" in printed
    assert "(10.0% vs 30.0%)" in printed and "simclr_synthetic_tiny3d: the audio" not in printed
    assert "does not beat random initialisation on both protocols" not in printed  # the video verdict is yes
    assert "Audio towers not beating their random init: l3_synthetic_tiny3d." in (tmp_path / "d.md").read_text()
