"""``videossl eval avc``: the correspondence heads L3 / AVE-Net save, balanced pairs, the standard errors, and the
command end to end on tiny synthetic videos from saved artefacts only (no method class)."""
from __future__ import annotations

import json
import math
import shutil

import numpy as np
import pytest
import torch

from videossl.backbones import save_encoder
from videossl.cli import main
from videossl.config import load_pretrain_config
from videossl.eval.avc import avc_standard_errors, load_avc_config, load_avc_head, negative_partners, run_avc
from videossl.methods.avenet import AVENet
from videossl.methods.l3 import L3


def _method(cls, name):
    return cls(load_pretrain_config(None, [f"method.name={name}", "data.num_frames=4", "data.crop_size=32",
                                           "method.audio_seconds=0.5"])).eval()


def _save_run(method, folder):
    """What a run writes at a checkpoint: encoder.pt (with its clip) and every extra encoder."""
    folder.mkdir(parents=True, exist_ok=True)
    save_encoder(folder / "encoder.pt", method.backbone, *method.encoder_spec(),
                 clip={"num_frames": 4, "frame_stride": 1, "crop_size": 32})
    for key, (module, name, kwargs) in method.extra_encoders().items():
        save_encoder(folder / f"encoder_{key}.pt", module, name, kwargs)
    return folder


@pytest.mark.parametrize("cls,name", [(L3, "l3"), (AVENet, "avenet")])
def test_saved_head_scores_like_the_method(cls, name, tmp_path):
    torch.manual_seed(0)
    method = _method(cls, name)
    _save_run(method, tmp_path)
    head = load_avc_head(tmp_path / "encoder_avc_head.pt")
    assert head.audio == {"audio_rate": 16000, "audio_seconds": 0.5, "n_mels": 64}
    v, a = torch.randn(5, method.backbone.num_features), torch.randn(5, method.audio_backbone.num_features)
    with torch.no_grad():
        if name == "l3":
            expected = method.correspondence_logits(v, a)
        else:
            expected = method.correspondence_logits(torch.nn.functional.normalize(method.video_head(v), dim=-1),
                                                    torch.nn.functional.normalize(method.audio_head(a), dim=-1))
        assert torch.allclose(head.correspondence_logits(v, a), expected, atol=1e-5)


def test_l3_checkpoint_keys_are_unchanged():
    keys = set(_method(L3, "l3").state_dict())
    assert {"fusion.0.weight", "fusion.0.bias", "fusion.2.weight", "fusion.2.bias"} <= keys  # older runs still load


def test_negatives_come_from_other_videos_and_pairs_are_balanced():
    videos = np.array([0, 1, 2, 0, 1, 2, 3])
    partners = negative_partners(videos, np.random.default_rng(0))
    assert (videos[partners] != videos).all()
    from videossl.errors import UserError

    with pytest.raises(UserError, match="two held-out videos"):
        negative_partners(np.zeros(3, dtype=int), np.random.default_rng(0))


def test_standard_errors():
    correct = np.array([1, 1, 1, 0, 1, 0, 1, 1], dtype=float)  # positives then negatives of 4 videos
    videos = np.array([0, 1, 2, 3, 0, 1, 2, 3])
    stats = avc_standard_errors(correct, videos)
    assert stats["accuracy"] == 0.75 and math.isclose(stats["se"], math.sqrt(0.75 * 0.25 / 8))
    per_video = np.array([1.0, 0.5, 1.0, 0.5])
    assert math.isclose(stats["se_video"], per_video.std(ddof=1) / 2)


def test_eval_avc_end_to_end_from_saved_files(tiny_pool, tmp_path, capsys):
    torch.manual_seed(0)
    run = _save_run(_method(L3, "l3"), tmp_path / "run")
    data = ["data.format=folder", f"data.root={tiny_pool.parent}", "data.split=test", "data.batch_size=6"]
    assert main(["eval", "avc", str(run), *data, "pairs_per_video=2", f"out_dir={tmp_path / 'out'}"]) == 0
    printed = capsys.readouterr().out
    assert "AVC accuracy" in printed and "binomial SE over 48 balanced pairs" in printed
    result = json.loads((tmp_path / "out" / "avc.json").read_text())
    assert result["num_pairs"] == 48 and result["num_videos"] == 12 and result["chance"] == 0.5
    assert 0.0 <= result["accuracy"] <= 1.0 and 0.0 <= result["se"] <= 0.5 / math.sqrt(48) + 1e-9
    assert math.isclose(result["accuracy"], (result["positive_accuracy"] + result["negative_accuracy"]) / 2)
    assert result["audio"]["audio_seconds"] == 0.5  # the head's record, not a default
    # the same numbers from the Python API, with the encoder.pt path instead of the run directory
    again = run_avc(load_avc_config(str(run / "encoder.pt"), None, [*data, "pairs_per_video=2"]))
    assert again["accuracy"] == result["accuracy"]


def test_eval_avc_user_errors_exit_2(tiny_pool, tmp_path, capsys):
    run = _save_run(_method(AVENet, "avenet"), tmp_path / "run")
    avid_like = tmp_path / "avid"
    avid_like.mkdir()
    for name in ("encoder.pt", "encoder_audio.pt"):
        shutil.copy(run / name, avid_like / name)
    assert main(["eval", "avc", str(avid_like), "data.format=folder", f"data.root={tiny_pool.parent}"]) == 2
    assert "encoder_avc_head.pt" in capsys.readouterr().err
    assert main(["eval", "avc", str(tmp_path / "missing")]) == 2
    assert main(["eval", "avc", str(run), "data.format=folder", f"data.root={tmp_path / 'nowhere'}"]) == 2
    assert main(["eval", "avc", str(run), "pairs_per_video=0"]) == 2
    err = capsys.readouterr().err
    assert err.count("videossl: error:") == 3 and "pairs_per_video" in err


@pytest.mark.parametrize("name", ["l3", "avenet"])
def test_a_pretraining_run_saves_the_head_and_eval_avc_reads_it(name, tiny_pool, tiny_overrides, tmp_path, capsys):
    from videossl.engine.trainer import pretrain

    overrides = tiny_overrides(tiny_pool, tmp_path / "run", frames=4,
                               extra=[f"method.name={name}", "train.plots=false", "method.audio_seconds=0.5"])
    run_dir = pretrain(load_pretrain_config(None, overrides))
    assert {"encoder.pt", "encoder_audio.pt", "encoder_avc_head.pt"} <= {p.name for p in run_dir.iterdir()}
    assert main(["eval", "avc", str(run_dir), "data.format=folder", f"data.root={tiny_pool.parent}",
                 "data.max_videos=6"]) == 0
    assert "binomial SE over 12 balanced pairs" in capsys.readouterr().out
