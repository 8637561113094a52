"""CPC: InfoNCE against a literal transcription (all candidates, per-group candidates, sampled negatives), the paper
recipe's log-bilinear score z^T W_k c against a hand computation, causal context, one predictor per step,
audio-only training, and (slow) CPC features beating random initialisation on espeak-ng speaker identification."""
import shutil

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from videossl.config import load_pretrain_config
from videossl.errors import UserError
from videossl.losses.cpc import cpc_info_nce
from videossl.methods.base import StepInfo
from videossl.methods.cpc import CPC


def _cfg(*extra):
    return load_pretrain_config(None, ["method.name=cpc", "backbone.name=tiny_cpc_encoder", "method.seconds=0.32",
                                       "method.pred_steps=3", *extra])


def test_info_nce_matches_a_literal_transcription():
    pred, target = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    loss, _ = cpc_info_nce(pred, target)
    flat_p, flat_t = pred.reshape(6, 4), target.reshape(6, 4)
    # every target (same sequence, other times; other sequences) is a candidate for every prediction
    literal = [-(flat_p[i] @ flat_t[i]) + torch.logsumexp(flat_t @ flat_p[i], 0) for i in range(6)]
    assert torch.allclose(loss, torch.stack(literal).mean(), atol=1e-5)


def test_groups_restrict_candidates_to_their_own_sequences():
    pred, target = torch.randn(4, 3, 5), torch.randn(4, 3, 5)
    loss, _ = cpc_info_nce(pred, target, group_size=2)
    # groups (0, 1) and (2, 3): each is its own 2-sequence batch
    per_group = [cpc_info_nce(pred[i:i + 2], target[i:i + 2])[0] for i in (0, 2)]
    assert torch.allclose(loss, torch.stack(per_group).mean(), atol=1e-5)
    with pytest.raises(ValueError, match="group_size"):
        cpc_info_nce(pred[:3], target[:3], group_size=2)


def test_sampled_negatives_are_uniform_draws_next_to_the_positive():
    pred, target = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    loss, _ = cpc_info_nce(pred, target, num_negatives=5, generator=torch.Generator().manual_seed(7))
    drawn = torch.randint(6, (6, 5), generator=torch.Generator().manual_seed(7))
    flat_p, flat_t = pred.reshape(6, 4), target.reshape(6, 4)
    literal = []
    for i in range(6):
        logits = torch.cat([(flat_p[i] @ flat_t[i])[None], flat_t[drawn[i]] @ flat_p[i]])
        literal.append(-logits[0] + torch.logsumexp(logits, 0))
    assert torch.allclose(loss, torch.stack(literal).mean(), atol=1e-5)


def test_paper_recipe_scores_with_the_log_bilinear_z_W_c():
    cfg = load_pretrain_config("recipes/cpc_librispeech_cpc.yaml")
    assert cfg.method.score == "bilinear"
    torch.manual_seed(0)
    method = CPC(cfg)
    assert len(method.predictors) == 12
    assert all(isinstance(p, nn.Linear) and p.bias is None for p in method.predictors)  # W_k, no bias
    wave = torch.randn(2, 1, 3200)  # 20 encoder steps
    k = 3
    with torch.no_grad():
        z = method.backbone.encode(wave)
        c = method.backbone.context(z)
        positions = torch.arange(z.shape[1] - k)
        prediction, target, temperature = method.score_inputs(c, z, k, positions)
        logits = torch.einsum("and,bmd->anbm", prediction, target) / temperature
        w = method.predictors[k - 1].weight  # (width, context_dim)
        n = len(positions)
        by_hand = torch.empty(2, n, 2, n)
        for a in range(2):
            for t in range(n):
                for b in range(2):
                    for u in range(n):
                        by_hand[a, t, b, u] = z[b, u + k] @ w @ c[a, t]  # z_{u+k}^T W_k c_t
    assert temperature == 1.0
    assert torch.allclose(logits, by_hand, rtol=1e-4, atol=1e-4)


def test_paper_recipe_loss_is_the_infonce_of_z_W_c_over_its_candidates():
    """With every candidate in the softmax (num_negatives=0) and the 2 sequences as one group, the step loss is
    the cross-entropy of z^T W_k c over every (sequence, position) target."""
    cfg = load_pretrain_config("recipes/cpc_librispeech_cpc.yaml", [
        "method.pred_steps=2", "method.num_negatives=0", "method.negative_group=2", "method.standardize_input=false",
        "train.batch_size=2"])
    torch.manual_seed(0)
    method = CPC(cfg)
    wave = torch.randn(2, 1, 3200)
    with torch.no_grad():
        out = method.training_step({"video": [], "audio": [wave]}, StepInfo(0, 1, 0))
        z = method.backbone.encode(wave)
        c = method.backbone.context(z)
        losses = []
        for k in (1, 2):
            n = z.shape[1] - k
            query = c[:, :n] @ method.predictors[k - 1].weight.T  # (2, n, width)
            logits = query.reshape(2 * n, -1) @ z[:, k:].reshape(2 * n, -1).T
            losses.append(F.cross_entropy(logits, torch.arange(2 * n)))
    assert torch.allclose(out["loss"], torch.stack(losses).mean(), rtol=1e-4, atol=1e-4)


def test_tiny_speech_recipe_keeps_the_cosine_score_it_was_measured_with():
    cfg = load_pretrain_config("recipes/cpc_speech_tiny_cpc.yaml")
    assert cfg.method.score == "cosine" and cfg.method.temperature == 0.1
    method = CPC(cfg)
    with torch.no_grad():
        z = method.backbone.encode(torch.randn(1, 1, 3200))
        prediction, target, temperature = method.score_inputs(method.backbone.context(z), z, 1, torch.arange(4))
    assert torch.allclose(prediction.norm(dim=-1), torch.ones(1, 4), atol=1e-5) and temperature == 0.1


def test_perfect_predictions_are_found():
    target = F.one_hot(torch.arange(6), 6).float().view(2, 3, 6) * 20
    loss, top1 = cpc_info_nce(target.clone(), target)
    assert top1 == 1.0 and loss < 1e-3


def test_context_is_causal_and_steps_have_their_own_predictor():
    torch.manual_seed(0)
    method = CPC(_cfg())
    assert len(method.predictors) == 3
    wave = torch.randn(2, 1, 5120)
    changed = wave.clone()
    changed[..., 2560:] = torch.randn(2, 1, 2560)  # change the second half only
    with torch.no_grad():
        c1 = method.backbone.context(method.backbone.encode(wave))
        c2 = method.backbone.context(method.backbone.encode(changed))
    # steps well before the change (receptive field of the convs: < 2 steps) see the same past
    assert torch.allclose(c1[:, :14], c2[:, :14], atol=1e-6)
    assert not torch.allclose(c1[:, -1], c2[:, -1])


def test_training_step_reaches_encoder_and_predictors():
    torch.manual_seed(0)
    method = CPC(_cfg("method.max_positions=8"))
    out = method.training_step({"video": [], "audio": [torch.randn(4, 1, 5120)]}, StepInfo(0, 10, 0))
    assert torch.isfinite(out["loss"]) and "top1_step1" in out and "top1_step3" in out
    grouped = CPC(_cfg("method.negative_group=2", "method.num_negatives=16", "train.batch_size=4"))
    assert torch.isfinite(grouped.training_step({"video": [], "audio": [torch.randn(4, 1, 5120)]},
                                                StepInfo(0, 10, 0))["loss"])
    out["loss"].backward()
    assert method.backbone.convs[0][0].weight.grad.abs().sum() > 0
    assert all(p.weight.grad is not None for p in method.predictors)


def test_bad_settings_are_clear_errors():
    with pytest.raises(UserError, match="CPC encoder"):
        CPC(load_pretrain_config(None, ["method.name=cpc", "backbone.name=tiny_r3d"]))
    with pytest.raises(UserError, match="pred_steps"):
        CPC(_cfg("method.seconds=0.02"))
    with pytest.raises(UserError, match="method.score"):
        CPC(_cfg("method.score=dot"))
    with pytest.raises(UserError, match="negative_group"):
        CPC(_cfg("method.negative_group=3", "train.batch_size=8"))


def test_views_are_one_raw_window():
    spec = CPC(_cfg()).views()
    assert spec.audio_rate == 16000
    wave = spec.transforms["audio"](torch.randn(1, 5120))
    assert wave.shape == (1, 5120)  # raw waveform, no spectrogram


needs_espeak = pytest.mark.skipif(shutil.which("espeak-ng") is None,
                                  reason="espeak-ng is not installed (apt-get install -y espeak-ng)")


@needs_espeak
def test_speaker_set_is_readable_with_speakers_as_classes(tmp_path):
    from videossl.data.datasets import read_dataset
    from videossl.data.speech import make_speaker_set

    root = make_speaker_set(tmp_path / "speech", num_speakers=3, utterances=2, seed=0)
    index = read_dataset("audio", str(root))
    assert len(index.class_names) == 3 and len(index.entries) == 6
    assert sorted({e.label for e in index.entries}) == [0, 1, 2]


@pytest.mark.slow
@needs_espeak
def test_cpc_beats_random_init_on_speaker_identification(tmp_path):
    from videossl.data.speech import make_speaker_set
    from videossl.engine.trainer import pretrain
    from videossl.eval.audio import load_audio_eval_config, run_audio_linear

    root = make_speaker_set(tmp_path / "speech", num_speakers=8, utterances=12, seed=0)
    cfg = load_pretrain_config("recipes/cpc_speech_tiny_cpc.yaml", [
        f"data.root={root}", "train.epochs=40", "train.progress=false", "train.plots=false",
        f"train.run_dir={tmp_path / 'run'}"])
    run_dir = pretrain(cfg)
    probe = [f"data.root={root}", "data.test_fraction=0.34", "data.seconds=1.28", "data.num_windows=4"]
    trained = run_audio_linear(load_audio_eval_config(str(run_dir / "encoder.pt"), None, probe))
    random = run_audio_linear(load_audio_eval_config("random:tiny_cpc_encoder", None, probe))
    assert trained["top1"] > random["top1"]
