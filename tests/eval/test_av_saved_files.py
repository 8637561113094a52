"""``videossl eval av-retrieval / av-sync / av-localise`` end to end on tiny synthetic videos from the files a run saves
(encoder.pt, encoder_audio.pt, the pair head and config.yaml): no last.ckpt, no method class."""
from __future__ import annotations

import json

import pytest
import torch
from omegaconf import OmegaConf

from videossl.backbones import save_encoder
from videossl.cli import main
from videossl.config import load_pretrain_config
from videossl.methods.avenet import AVENet
from videossl.methods.avid import AVID


@pytest.mark.parametrize("cls,name", [(AVID, "avid"), (AVENet, "avenet")])
def test_av_commands_run_from_the_saved_files(cls, name, tiny_pool, tmp_path, capsys):
    torch.manual_seed(0)
    cfg = load_pretrain_config(None, [f"method.name={name}", "data.format=folder", f"data.root={tiny_pool.parent}",
                                      "data.num_frames=4", "data.frame_stride=1", "data.crop_size=32",
                                      "data.num_workers=0", "method.audio_seconds=0.5"])
    method = cls(cfg).eval()
    run = tmp_path / "run"
    run.mkdir()
    save_encoder(run / "encoder.pt", method.backbone, *method.encoder_spec())
    for key, (module, extra_name, kwargs) in method.extra_encoders().items():
        save_encoder(run / f"encoder_{key}.pt", module, extra_name, kwargs)
    (run / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    out = tmp_path / "out"
    assert main(["eval", "av-retrieval", str(run), "--out", str(out)]) == 0
    retrieval = json.loads((out / "av_retrieval.json").read_text())
    assert retrieval["num_videos"] == 12 and retrieval["method"] == name and 0 <= retrieval["v2a_R@1"] <= 1
    assert main(["eval", "av-sync", str(run), "--offset", "0.25", "--clips-per-video", "2", "--out", str(out)]) == 0
    sync = json.loads((out / "av_sync.json").read_text())
    assert sync["num_pairs"] == 24 and sync["num_videos"] == 12 and 0 <= sync["sync_accuracy"] <= 1
    if name == "avenet":
        assert main(["eval", "av-localise", str(run), "--num-videos", "3", "--out", str(out / "maps")]) == 0
        assert len(list((out / "maps").glob("*.png"))) == 3
    assert not (run / "last.ckpt").exists()
