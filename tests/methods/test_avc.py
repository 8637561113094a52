"""Audio-visual correspondence: AVID's cross-modal InfoNCE, L3 and AVE-Net pairs, scores, localisation PNGs,
and (slow) an AVC model trained on the synthetic dataset telling synchronised from offset audio."""
import pytest
import torch
import torch.nn.functional as F

from videossl import recipes_dir
from videossl.config import load_pretrain_config
from videossl.methods.avenet import AVENet
from videossl.methods.avid import AVID, cross_modal_nce, in_video_sync_nce
from videossl.methods.brave import BraVe
from videossl.methods.base import StepInfo
from videossl.methods.l3 import L3
from videossl.pictures import save_localisation_overlays


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


def test_in_video_sync_nce_is_a_two_way_softmax_over_the_two_audio_windows():
    v, a, hard = torch.randn(6, 8), torch.randn(6, 8), torch.randn(6, 8)
    t = 0.2
    loss, accuracy = in_video_sync_nce(v, a, hard, t)
    pos = F.cosine_similarity(v, a, dim=1) / t
    neg = F.cosine_similarity(v, hard, dim=1) / t
    assert torch.allclose(loss, (-pos + torch.logaddexp(pos, neg)).mean(), atol=1e-5)
    assert accuracy == (pos > neg).float().mean()
    # the same audio at both times carries no timing: the loss is exactly ln 2
    assert torch.allclose(in_video_sync_nce(v, a, a.clone(), t)[0], torch.tensor(0.6931472), atol=1e-5)


def test_avid_sync_weight_adds_the_in_video_term():
    torch.manual_seed(0)
    batch = _batch(hard=True)
    plain = AVID(_cfg("avid", "method.hard_negative=true"))
    weighted = AVID(_cfg("avid", "method.hard_negative=true", "method.sync_weight=2.0"))
    weighted.load_state_dict(plain.state_dict())
    plain.eval(), weighted.eval()  # same batch-norm behaviour for both forward passes
    out_plain = plain.training_step(batch, StepInfo(0, 10, 0))
    out = weighted.training_step(batch, StepInfo(0, 10, 0))
    assert torch.allclose(out["loss"], out_plain["loss"] + 2.0 * out["sync_loss"], atol=1e-5)
    assert 0.0 <= out["sync_accuracy"] <= 1.0 and "sync_loss" not in out_plain
    from videossl.errors import UserError

    with pytest.raises(UserError, match="hard_negative"):
        AVID(_cfg("avid", "method.sync_weight=1.0"))  # the term needs the same video's audio at another time


def test_avts_recipe_builds_avid_with_the_in_video_term():
    recipe = recipes_dir() / "avts_synthetic_tiny3d.yaml"
    method = AVID(load_pretrain_config(recipe, ["data.crop_size=32"]))
    h = method.hparams
    assert h.hard_negative and h.sync_weight > 0 and h.augment == "light"
    assert h.min_negative_gap_s >= h.audio_seconds  # the hard negative never shares sound with the positive


def test_light_augment_leaves_the_audio_untouched():
    import numpy as np

    method = AVID(_cfg("avid", "method.augment=light"))
    audio = method.view_transforms()["audio"]
    wave = torch.from_numpy(np.random.default_rng(0).normal(0, 0.1, (1, 16000)).astype(np.float32))
    assert torch.equal(audio(wave), audio(wave))  # no random gain, no SpecAugment mask
    from videossl.errors import UserError

    with pytest.raises(UserError, match="augment"):
        AVID(_cfg("avid", "method.augment=strong"))


def test_audioset_recipe_builds_avid_cma_heads_and_augmentation():
    """avid_audioset_r2plus1d18 follows AVID-CMA's Cross-N1024.yaml: proj_dim [512, 512, 128] (three linear
    layers, ReLU, no BN), tau 0.07, msc+color video (crop 0.08-1, jitter (0.4, 0.4, 0.4, 0.2) on every clip) and a
    +-10% volume change with no spectrogram masks."""
    from torch import nn
    from torchvision.transforms import v2

    from videossl.transforms.audio import RandomGain, SpecMask

    recipe = recipes_dir() / "avid_audioset_r2plus1d18.yaml"
    cfg = load_pretrain_config(recipe, ["backbone.name=tiny_r3d", "method.audio_backbone=tiny_audio_resnet"])
    method = AVID(cfg)
    assert method.hparams.temperature == 0.07 and cfg.optim.name == "adam" and cfg.optim.lr == 0.0005
    for head in (method.video_head, method.audio_head):
        linears = [m for m in head if isinstance(m, nn.Linear)]
        assert [m.out_features for m in linears] == [512, 512, 128]
        assert not any(isinstance(m, nn.BatchNorm1d) for m in head)
    transforms = method.view_transforms()
    steps = list(transforms["clip"].pipeline.transforms)
    crop = next(t for t in steps if isinstance(t, v2.RandomResizedCrop))
    jitter = next(t for t in steps if isinstance(t, v2.RandomApply))
    assert tuple(crop.scale) == (0.08, 1.0) and tuple(crop.size) == (224, 224)
    assert jitter.p == 1.0 and jitter.transforms[0].hue == (-0.2, 0.2)
    assert len(steps) == 5  # crop, flip, to float, jitter, normalise: no grayscale, no blur
    audio_steps = list(transforms["audio"].steps)
    gain = next(t for t in audio_steps if isinstance(t, RandomGain))
    assert abs(gain.max_db - 0.9) < 1e-9 and not any(isinstance(t, SpecMask) for t in audio_steps)


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
    # the pair heads audio-visual evaluation reads instead of the method (eval avc: L3 / AVE-Net's avc_head)
    assert set(method.extra_encoders()) == ({"audio", "av_head"} if name == "avid" else {"audio", "avc_head"})
    method.eval()
    scores = method.pair_scores(torch.randn(3, 3, 4, 32, 32), torch.randn(5, 1, 64, 101))
    assert scores.shape == (3, 5) and torch.isfinite(scores).all()


@pytest.mark.parametrize("cls,name,extra", [
    (AVID, "avid", []), (L3, "l3", []), (AVENet, "avenet", []),
    (BraVe, "brave", ["method.broad_audio=true", "method.broad_video=false"]),
    (BraVe, "brave", ["method.broad_audio=true", "method.shared_heads=true"])], ids=str)
def test_audio_visual_evaluation_reads_the_saved_files_not_the_method(cls, name, extra, tmp_path):
    """The towers and pair head a run saves (encoder.pt, encoder_audio.pt, encoder_avc_head.pt / encoder_av_head.pt)
    score pairs, and localise sound (AVE-Net), exactly as the method they came from; no last.ckpt is needed."""
    from omegaconf import OmegaConf

    from videossl.backbones import save_encoder
    from videossl.eval.av_retrieval import SavedAVModel, load_av_model

    torch.manual_seed(0)
    cfg = _cfg(name, *extra, *(["method.pred_hidden_dim=64", "method.proj_hidden_dim=64"] if name == "brave" else []))
    method = cls(cfg)
    if name != "brave":  # BatchNorm statistics move off their init
        method.training_step(_batch(b=4), StepInfo(0, 10, 0))["loss"].backward()
    method.eval()
    spec_name, kwargs = method.encoder_spec()
    save_encoder(tmp_path / "encoder.pt", method.backbone, spec_name, kwargs)
    for suffix, (module, extra_name, extra_kwargs) in method.extra_encoders().items():
        save_encoder(tmp_path / f"encoder_{suffix}.pt", module, extra_name, extra_kwargs)
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    model = load_av_model(tmp_path)
    assert isinstance(model, SavedAVModel) and model.name == name and not (tmp_path / "last.ckpt").exists()
    assert model.geometry == {"audio_rate": cfg.method.audio_rate, "audio_seconds": cfg.method.audio_seconds,
                              "n_mels": cfg.method.n_mels}
    clips, audio = torch.randn(3, 3, 4, 32, 32), torch.randn(5, 1, 64, 101)
    with torch.no_grad():
        assert torch.allclose(model.pair_scores(clips, audio), method.pair_scores(clips, audio), atol=1e-5)
        if name == "avenet":
            assert torch.allclose(model.localisation_maps(clips, audio[:3]), method.localisation_maps(clips, audio[:3]),
                                  atol=1e-5)


def test_a_run_from_before_the_pair_head_files_still_evaluates_from_its_checkpoint(tmp_path):
    """AVID runs written before encoder_av_head.pt existed have config.yaml and last.ckpt: the method is rebuilt."""
    from omegaconf import OmegaConf

    from videossl.eval.av_retrieval import RunMethodAVModel, load_av_model

    torch.manual_seed(0)
    cfg = _cfg("avid")
    method = AVID(cfg).eval()
    (tmp_path / "config.yaml").write_text(OmegaConf.to_yaml(cfg))
    torch.save({"format": "videossl-checkpoint", "model": method.state_dict(), "optimizer": {}, "step": 1},
               tmp_path / "last.ckpt")
    model = load_av_model(tmp_path)
    assert isinstance(model, RunMethodAVModel) and model.name == "avid"
    clips, audio = torch.randn(2, 3, 4, 32, 32), torch.randn(3, 1, 64, 101)
    with torch.no_grad():
        assert torch.allclose(model.pair_scores(clips, audio), method.pair_scores(clips, audio), atol=1e-5)


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


def _meta(seconds, fps=16):
    from videossl.data.sampling import VideoMeta

    n = int(round(seconds * fps))
    return VideoMeta(num_frames=n, fps=fps, duration=n / fps, height=32, width=32, has_audio=True)


def test_sync_pairs_are_really_offset_and_centred_on_the_clip():
    import numpy as np

    from videossl.data.sampling import frames_to_time
    from videossl.eval.av_retrieval import SyncPairSampler

    meta = _meta(2.5)
    sampler = SyncPairSampler(num_frames=4, stride=4, audio_seconds=1.0, offset_s=1.0)
    signs = set()
    for seed in range(40):
        sample = sampler(meta, np.random.default_rng(seed))
        clip, synced, shifted = sample.views
        centre = sum(frames_to_time(meta, clip.frame_indices)) / 2
        assert synced.time_range == pytest.approx((centre - 0.5, centre + 0.5))  # centred, never clamped
        assert abs(shifted.time_range[0] - synced.time_range[0]) == pytest.approx(1.0)
        assert 0.0 <= min(shifted.time_range[0], synced.time_range[0])
        assert max(shifted.time_range[1], synced.time_range[1]) <= meta.duration + 1e-6
        assert sample.targets["sync_shift_s"] == pytest.approx(shifted.time_range[0] - synced.time_range[0])
        signs.add(sample.targets["sync_shift_s"] > 0)
    assert signs == {True, False}  # before and after both occur


def test_sync_pairs_of_a_too_short_video_take_the_largest_shift():
    import numpy as np

    from videossl.eval.av_retrieval import SyncPairSampler

    meta = _meta(1.5)  # 1 s windows: at most 0.5 s apart
    for seed in range(5):
        sample = SyncPairSampler(4, 2, 1.0, 1.0)(meta, np.random.default_rng(seed))
        assert abs(sample.targets["sync_shift_s"]) == pytest.approx(0.5)


def test_audio_windows_differ_marks_an_impact_or_a_level_change_only():
    from videossl.eval.av_retrieval import audio_windows_differ

    noise = torch.randn(4, 1, 64, 101)  # dB-scale log-mels: a noise floor with 1 dB jitter
    other = noise + torch.randn(4, 1, 64, 101)
    other[1, :, 20:24, 40:50] += 60.0  # a tone burst in a few bands
    other[2] += 6.0  # the whole window 6 dB louder
    assert audio_windows_differ(noise, other).tolist() == [False, True, True, False]


def test_video_clustered_bound_treats_the_clips_of_a_video_as_one_unit():
    from videossl.eval.av_retrieval import video_clustered_bound

    video = torch.arange(10).repeat(3)  # 10 videos x 3 clips
    wins = (video < 7).float()  # clips of one video agree: 7 of 10 videos right
    bound = video_clustered_bound(wins, video)
    per_video_se = float(torch.tensor([1.0] * 7 + [0.0] * 3).std() / 10 ** 0.5)
    assert bound["num_videos"] == 10 and bound["se"] == pytest.approx(per_video_se)
    assert bound["lower"] == pytest.approx(0.7 - 2.326 * per_video_se)
    assert bound["p"] > 0.05  # 10 units, not 30: 0.7 is not yet significant
    many = video_clustered_bound((torch.arange(300) % 10 < 7).float(), torch.arange(300))
    assert many["p"] < 1e-4  # 300 independent pairs at 0.7 are


@pytest.mark.slow
def test_avc_model_trained_on_synthetic_tells_synchronised_from_offset(tmp_path):
    """The AVC model of recipes/avts_synthetic_tiny3d.yaml (AVID's cross-modal InfoNCE + AVTS's in-video term:
    each clip picks its own audio over the same video's audio >= 1 s away), trained 40 epochs of 16 on 96 pool
    videos (240 steps, 32 px, about 4 minutes of one core), prefers a clip's synchronised audio over the audio
    1 s before or after it on 960 pairs (192 test videos x 5 clip times), by a margin that is significant with
    each video's 5 clips counted as ONE unit (they share class and scene, so they are not independent pairs): the
    one-sided 99% lower bound, mean of the 192 per-video accuracies - 2.326 x their standard error, is above 0.5
    (p < 0.01). At the measured SE of about 0.02 that needs an accuracy above about 0.55.

    Ceiling: the classes that are silent or hum steadily (orbit, rotate, oscillate, random walk, most of zigzag and
    pulse) sound the same at both times, so about 45% of the pairs carry timing and a perfect model scores about
    0.72; the test also asks for > 0.6 on those pairs (judged from the audio alone, ``audio_windows_differ``).
    Measured with seed 0 (this test): 61.4% of 960 (SE 2.0, p 8e-9), 71.8% of the 425 informative pairs; training
    seeds 1 and 2: 59.1% (p 4e-6) and 59.2% (p 1e-6), 66.8% and 65.2% informative -- since the hard negatives keep
    their 1 s gap from a positive window shifted inside the file (AudioVisualSampler). Before that fix seeds 0 / 1 / 2
    gave 58.9 / 57.7 / 55.6% (bounds 0.539 / 0.529 / 0.512), 68.0 / 67.1 / 65.4% informative. With 3 clips per video (576 pairs) seeds 0 / 1 / 2 gave bounds 0.536 / 0.513 /
    0.505, and untrained towers (3 seeds) 49-54%, bound 0.44-0.49, informative 49-53%: both assertions fail without
    training.
    """
    from videossl.engine.trainer import pretrain
    from videossl.eval.av_retrieval import run_av_sync

    synthetic = ["data.synthetic.num_pool=96", "data.synthetic.num_train=12", "data.synthetic.num_test=192",
                 "data.synthetic.size=32", f"data.root={tmp_path / 'synthetic'}"]
    cfg = load_pretrain_config("recipes/avts_synthetic_tiny3d.yaml", [
        *synthetic, "data.crop_size=32", "data.num_workers=0", "train.epochs=40", "train.batch_size=16",
        "train.progress=false", "train.plots=false", f"train.run_dir={tmp_path / 'run'}"])
    run_dir = pretrain(cfg)
    result = run_av_sync(run_dir, offset_s=1.0, clips_per_video=5)
    assert result["num_pairs"] == 960
    assert result["num_short"] <= 20  # pairs of videos under ~2.06 s: their offset audio is 0.5-1 s away
    assert result["sync_lower_99"] > 0.5, result
    assert result["num_informative"] >= 350 and result["informative_accuracy"] > 0.6, result
