"""Audio-visual correspondence: AVID's cross-modal InfoNCE, L3 and AVE-Net pairs, scores, localisation PNGs,
and (slow) an AVC model trained on the synthetic dataset telling synchronised from offset audio."""
import pytest
import torch
import torch.nn.functional as F

from videossl.config import load_pretrain_config
from videossl.methods.avenet import AVENet, save_localisation_overlays
from videossl.methods.avid import AVID, cross_modal_nce
from videossl.methods.base import StepInfo
from videossl.methods.l3 import L3


def _cfg(name, *extra):
    return load_pretrain_config(None, [f"method.name={name}", "data.num_frames=4", "data.crop_size=32", *extra])


def _batch(b=4, hard=False):
    audio = [torch.randn(b, 1, 64, 101)] + ([torch.randn(b, 1, 64, 101)] if hard else [])
    return {"video": [torch.randn(b, 3, 4, 32, 32)], "audio": audio}


def test_cross_modal_nce_matches_a_literal_transcription():
    v, a, hard = torch.randn(5, 8), torch.randn(5, 8), torch.randn(5, 8)
    t = 0.1
    loss, _ = cross_modal_nce(v, a, t, hard)
    vn, an, hn = F.normalize(v, dim=1), F.normalize(a, dim=1), F.normalize(hard, dim=1)
    v2a = [-(vn[i] @ an[i] / t) + torch.logsumexp(torch.cat([an @ vn[i], (hn[i] @ vn[i])[None]]) / t, 0)
           for i in range(5)]
    a2v = [-(an[i] @ vn[i] / t) + torch.logsumexp(vn @ an[i] / t, 0) for i in range(5)]
    assert torch.allclose(loss, 0.5 * (torch.stack(v2a).mean() + torch.stack(a2v).mean()), atol=1e-5)


def test_a_hard_negative_equal_to_the_positive_raises_the_loss():
    v = torch.eye(4)
    easy, top1 = cross_modal_nce(v, v.clone(), 0.1)
    harder, _ = cross_modal_nce(v, v.clone(), 0.1, hard_audio=v.clone())
    assert top1 == 1.0 and harder > easy + 0.1


@pytest.mark.parametrize("cls,name", [(AVID, "avid"), (L3, "l3"), (AVENet, "avenet")])
@pytest.mark.parametrize("hard", [False, True], ids=["batch_negatives", "hard_negatives"])
def test_training_step_and_pair_scores(cls, name, hard):
    torch.manual_seed(0)
    method = cls(_cfg(name, f"method.hard_negative={str(hard).lower()}"))
    out = method.training_step(_batch(hard=hard), StepInfo(0, 10, 0))
    assert torch.isfinite(out["loss"])
    out["loss"].backward()
    for tower in (method.backbone, method.audio_backbone):  # both towers learn
        assert any(p.grad is not None and p.grad.abs().sum() > 0 for p in tower.parameters())
    assert set(method.extra_encoders()) == {"audio"}
    method.eval()
    scores = method.pair_scores(torch.randn(3, 3, 4, 32, 32), torch.randn(5, 1, 64, 101))
    assert scores.shape == (3, 5) and torch.isfinite(scores).all()


def test_l3_pair_scores_match_its_classifier():
    torch.manual_seed(0)
    method = L3(_cfg("l3")).eval()
    video, audio = torch.randn(2, 3, 4, 32, 32), torch.randn(3, 1, 64, 101)
    scores = method.pair_scores(video, audio)
    with torch.no_grad():
        logits = method.correspondence_logits(method.backbone(video[1:2]), method.audio_backbone(audio[2:3]))
    assert torch.allclose(scores[1, 2], logits[0, 1] - logits[0, 0], atol=1e-4)


def test_avenet_sees_only_the_distance():
    method = AVENet(_cfg("avenet"))
    a = F.normalize(torch.randn(4, 128), dim=1)
    b = F.normalize(torch.randn(4, 128), dim=1)
    rotation = torch.linalg.qr(torch.randn(128, 128))[0]  # distances are invariant to a rotation of both
    assert torch.allclose(method.correspondence_logits(a, b), method.correspondence_logits(a @ rotation, b @ rotation),
                          atol=1e-5)
    near = method.correspondence_logits(a, a)
    assert (near[:, 1] > near[:, 0]).all()  # initialised so that identical embeddings correspond


def test_localisation_maps_and_png_overlays(tmp_path):
    from PIL import Image

    torch.manual_seed(0)
    method = AVENet(_cfg("avenet")).eval()
    clips, audio = torch.randn(2, 3, 4, 32, 32), torch.randn(2, 1, 64, 101)
    maps = method.localisation_maps(clips, audio)
    assert maps.dim() == 3 and maps.shape[0] == 2 and maps.abs().max() <= 1 + 1e-5
    paths = save_localisation_overlays(clips, maps, tmp_path, ["a", "b"])
    assert [p.name for p in paths] == ["a.png", "b.png"]
    image = Image.open(paths[0])
    assert image.size == (32, 32) and image.mode == "RGB"


@pytest.mark.slow
@pytest.mark.xfail(strict=False, reason="measured 2026-11-22: after 150 steps the L3 model does not learn correspondence "
                   "(training AVC accuracy 0.50-0.69, loss 0.75 -> 0.66) and sync accuracy is 49% (chance 50%); "
                   "needs a longer schedule or a bigger signal in the synthetic audio (issue 8)")
def test_avc_model_trained_on_synthetic_tells_synchronised_from_offset(tmp_path):
    """L3 with same-video hard negatives learns timing: synchronised audio beats 1 s-shifted audio > 60%."""
    from videossl.engine.trainer import pretrain
    from videossl.eval.av_retrieval import run_av_sync

    synthetic = ["data.synthetic.num_pool=96", "data.synthetic.num_train=12", "data.synthetic.num_test=48",
                 "data.synthetic.size=32", f"data.root={tmp_path / 'synthetic'}"]
    cfg = load_pretrain_config("recipes/l3_synthetic_tiny3d.yaml", [
        *synthetic, "data.num_frames=4", "data.crop_size=32", "data.num_workers=0", "train.epochs=25",
        "train.batch_size=16", "train.progress=false", "train.plots=false", f"train.run_dir={tmp_path / 'run'}",
        "method.hard_fraction=1.0"])
    run_dir = pretrain(cfg)
    result = run_av_sync(run_dir, offset_s=1.0)
    assert result["sync_accuracy"] > 0.6
