"""finetune.layer_decay / drop_path / label_smoothing / mixup_alpha / cutmix_alpha: VideoMAE's fine-tuning recipe
(MCG-NJU/VideoMAE run_class_finetuning.py, optim_factory.py, timm Mixup), off by default."""
import json

import pytest
import torch
from omegaconf import OmegaConf

from videossl.backbones import create_backbone
from videossl.errors import UserError
from videossl.eval import features as features_module
from videossl.eval import load_eval_config, run_finetune
from videossl.eval.config import FinetuneConfig
from videossl.eval.finetune import VideoClassifier, build_optimizer
from videossl.eval.vit_finetune import (finetune_batch, layer_decay_scales, mix_clips, set_drop_path,
                                        smoothed_one_hot, with_layer_decay)


def _settings(**kw):
    return OmegaConf.structured(FinetuneConfig(**kw))


def _classifier(name="tiny_videomae", classes=5):
    torch.manual_seed(0)
    return VideoClassifier(create_backbone(name), classes)


def test_defaults_are_off():
    s = _settings()
    assert (s.layer_decay, s.drop_path, s.label_smoothing, s.mixup_alpha, s.cutmix_alpha) == (1.0, 0.0, 0.0, 0.0, 0.0)
    clips, labels = torch.randn(4, 3, 2, 8, 8), torch.tensor([0, 1, 2, 1])
    out, targets, smoothing = finetune_batch(clips, labels, 3, s)
    assert out is clips and targets is labels and smoothing == 0.0
    assert layer_decay_scales(_classifier(), 1.0) == {}


def test_layer_decay_follows_videomae_get_num_layer_for_vit():
    """optim_factory.py: embeddings -> 0, blocks.i -> i + 1, the rest -> L + 1; scale = decay ** (L + 1 - id)."""
    model = _classifier()  # tiny_videomae: 2 blocks
    scales = layer_decay_scales(model, 0.5)
    assert scales["backbone.model.embeddings.patch_embeddings.projection.weight"] == pytest.approx(0.5 ** 3)
    assert scales["backbone.model.encoder.layer.0.attention.attention.query.weight"] == pytest.approx(0.5 ** 2)
    assert scales["backbone.model.encoder.layer.1.output.dense.bias"] == pytest.approx(0.5)
    assert scales["fc.weight"] == 1.0
    assert set(scales) == {name for name, _ in model.named_parameters()}


def test_with_layer_decay_splits_groups_and_keeps_weight_decay():
    model = _classifier()
    settings = _settings(optimizer="adamw", lr=0.256, weight_decay=0.05)
    plain = build_optimizer(model, settings, batch_size=256)  # lr 0.256 at batch 256
    decayed = with_layer_decay(plain, model, 0.5)
    assert type(decayed) is torch.optim.AdamW
    scales = layer_decay_scales(model, 0.5)
    name_of = {id(p): n for n, p in model.named_parameters()}
    seen = 0
    for group in decayed.param_groups:
        for param in group["params"]:
            name = name_of[id(param)]
            assert group["lr"] == pytest.approx(0.256 * scales[name])
            assert group["weight_decay"] == (0.0 if param.ndim <= 1 else 0.05)
            seen += 1
    assert seen == sum(1 for _ in model.parameters())
    assert len(with_layer_decay(build_optimizer(model, settings, 256), model, 1.0).param_groups) == 4


def test_layer_decay_needs_transformer_blocks():
    with pytest.raises(UserError, match="layer_decay"):
        layer_decay_scales(_classifier("tiny_r3d"), 0.75)


def test_drop_path_is_linear_over_the_blocks_and_only_in_training():
    from torchvision.ops import StochasticDepth

    model = _classifier("tiny_timesformer")
    assert set_drop_path(model.backbone, 0.2) == 2
    blocks = [m for m in model.backbone.modules() if isinstance(getattr(m, "drop_path", None), StochasticDepth)]
    assert [b.drop_path.p for b in blocks] == pytest.approx([0.0, 0.2])
    x = torch.randn(8, 3, 4, 32, 32)
    model.eval()
    torch.testing.assert_close(model(x), model(x))
    model.train()
    torch.manual_seed(1)
    a = model(x)
    torch.manual_seed(2)
    assert not torch.allclose(a, model(x))  # a block's residual dropped for some samples
    with pytest.raises(UserError, match="drop_path"):
        set_drop_path(_classifier("tiny_videomae").backbone, 0.1)  # transformers' VideoMAE layers have none


def test_smoothed_one_hot_matches_torch_label_smoothing():
    logits, labels = torch.randn(6, 4), torch.tensor([0, 3, 1, 2, 2, 0])
    targets = smoothed_one_hot(labels, 4, 0.1)
    assert targets.sum(dim=1).tolist() == pytest.approx([1.0] * 6)
    torch.testing.assert_close(torch.nn.functional.cross_entropy(logits, targets),
                               torch.nn.functional.cross_entropy(logits, labels, label_smoothing=0.1))


def test_mixup_mixes_each_clip_with_the_batch_reversed():
    torch.manual_seed(0)
    clips, labels = torch.randn(4, 3, 2, 8, 8), torch.tensor([0, 1, 2, 1])
    mixed, targets = mix_clips(clips, labels, 3, mixup_alpha=0.8, smoothing=0.1)
    one_hot = smoothed_one_hot(labels, 3, 0.1)
    lam = float(targets[0, 0] - one_hot.flip(0)[0, 0]) / float(one_hot[0, 0] - one_hot.flip(0)[0, 0])
    torch.testing.assert_close(mixed, lam * clips + (1 - lam) * clips.flip(0))
    torch.testing.assert_close(targets, lam * one_hot + (1 - lam) * one_hot.flip(0))


def test_cutmix_pastes_one_box_on_every_frame_and_weights_targets_by_area():
    torch.manual_seed(3)
    clips, labels = torch.zeros(2, 3, 4, 16, 16), torch.tensor([0, 1])
    clips[1] = 1.0
    mixed, targets = mix_clips(clips, labels, 2, cutmix_alpha=1.0)
    pasted = mixed[0, 0]  # (T, H, W): ones where the box took the other clip's pixels
    assert all(torch.equal(pasted[t], pasted[0]) for t in range(4))  # the same box on every frame
    area = float(pasted[0].mean())
    assert targets[0].tolist() == pytest.approx([1 - area, area])
    assert torch.equal(mixed[1, 0, 0], 1 - pasted[0])


def test_new_fields_are_validated():
    for override in ("finetune.layer_decay=0", "finetune.layer_decay=1.5", "finetune.drop_path=-0.1",
                     "finetune.label_smoothing=1.0", "finetune.mixup_alpha=-1", "finetune.mixup_switch_prob=2"):
        with pytest.raises(UserError, match="finetune."):
            load_eval_config("random:tiny_r3d", None, [override])


def test_finetune_runs_with_every_regulariser(colour_folder_dataset, tmp_path):
    features_module.clear_feature_cache()
    cfg = load_eval_config("random:tiny_timesformer", None, [
        "data.format=folder", f"data.root={colour_folder_dataset}", "data.num_frames=4", "data.frame_stride=2",
        "data.crop_size=32", "data.num_workers=0", "data.batch_size=4", "test.num_clips=1", "test.num_crops=1",
        "progress=false", f"out_dir={tmp_path}", "finetune.epochs=2", "finetune.batch_size=4", "finetune.optimizer=adamw",
        "finetune.lr=0.001", "finetune.layer_decay=0.75", "finetune.drop_path=0.1", "finetune.label_smoothing=0.1",
        "finetune.mixup_alpha=0.8", "finetune.cutmix_alpha=1.0"])
    run_finetune(cfg)
    losses = json.loads((tmp_path / "finetune.json").read_text())["splits"][0]["train_loss"]
    assert len(losses) == 2 and all(0 < loss < 10 for loss in losses)
