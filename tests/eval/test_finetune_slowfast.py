"""SlowFast's fine-tuning protocol options (facebookresearch/SlowFast configs/contrastive_ssl/finetune_ucf_Slow_R50_
syn*.yaml): Nesterov SGD, short-side scale jitter + random crop, colour jitter and grayscale on every training clip,
and a test crop of its own; defaults unchanged. Plus the study's eval recipes load with those values."""
import json

import pytest
import torch
from omegaconf import OmegaConf
from torchvision.transforms import v2

from videossl.errors import UserError
from videossl.eval import features as features_module
from videossl.eval import load_eval_config, run_finetune
from videossl.eval.config import FinetuneConfig
from videossl.eval.finetune import VideoClassifier, build_optimizer, slowfast_train_spec


def _settings(**kw):
    return OmegaConf.structured(FinetuneConfig(**kw))


def test_defaults_leave_the_protocol_unchanged():
    s = _settings()
    assert (s.nesterov, list(s.jitter_scales), list(s.color_jitter), s.gray_p, s.test_crop_size) == (
        False, [], [], 0.0, 0)


def test_nesterov_reaches_sgd():
    backbone = torch.nn.Linear(2, 4)
    backbone.num_features = 4
    model = VideoClassifier(backbone, 3)
    assert build_optimizer(model, _settings(nesterov=True), 64).defaults["nesterov"] is True
    assert build_optimizer(model, _settings(), 64).defaults["nesterov"] is False


def test_slowfast_train_spec_scale_jitter_then_colour():
    data = OmegaConf.create({"num_frames": 4, "frame_stride": 2, "crop_size": 32})
    spec = slowfast_train_spec(data, _settings(jitter_scales=[40, 48], color_jitter=[0.4, 0.4, 0.4, 0.1],
                                               gray_p=0.2), {"mean": None, "std": None})
    steps = spec.transforms["clip"].pipeline.transforms
    assert isinstance(steps[0], v2.RandomShortestSize) and list(steps[0].min_size) == list(range(40, 49))
    assert isinstance(steps[1], v2.RandomCrop) and steps[1].size == (32, 32)
    jitter = [s for s in steps if isinstance(s, v2.RandomApply)]
    assert len(jitter) == 1 and jitter[0].p == 1.0 and jitter[0].transforms[0].hue == (-0.1, 0.1)
    assert not any(type(s).__name__ == "RandomGaussianBlur" for s in steps)  # no blur in SlowFast's fine-tuning
    out = spec.transforms["clip"](torch.randint(0, 255, (4, 36, 50, 3), dtype=torch.uint8))
    assert out.shape == (3, 4, 32, 32)
    with pytest.raises(UserError, match="jitter_scales"):
        slowfast_train_spec(data, _settings(jitter_scales=[48, 40]), {})
    with pytest.raises(UserError, match="color_jitter"):
        slowfast_train_spec(data, _settings(color_jitter=[0.4]), {})


def test_finetune_runs_with_the_slowfast_options(colour_folder_dataset, tmp_path):
    features_module.clear_feature_cache()
    cfg = load_eval_config("random:tiny_r3d", None, [
        "data.format=folder", f"data.root={colour_folder_dataset}", "data.num_frames=4", "data.frame_stride=2",
        "data.crop_size=24", "data.num_workers=0", "data.batch_size=4", "test.num_clips=1", "test.num_crops=3",
        "finetune.epochs=1", "finetune.batch_size=4", "finetune.warmup_epochs=0", "finetune.nesterov=true",
        "finetune.jitter_scales=[28,32]", "finetune.color_jitter=[0.4,0.4,0.4,0.1]", "finetune.gray_p=0.2",
        "finetune.test_crop_size=32", "progress=false", f"out_dir={tmp_path}"])
    result = run_finetune(cfg)
    assert 0.0 <= result["top1"] <= 1.0
    assert json.loads((tmp_path / "finetune.json").read_text())["splits"][0]["num_test"] == 6


@pytest.mark.parametrize("name,settings", [
    ("ucf101_finetune_rho", {"epochs": 200, "batch_size": 64, "lr": 0.04, "weight_decay": 0.0, "dropout": 0.8,
                             "nesterov": True, "warmup_epochs": 0, "jitter_scales": [256, 320], "test_crop_size": 256,
                             "color_jitter": [0.4, 0.4, 0.4, 0.1], "gray_p": 0.2}),
    ("hmdb51_finetune_rho", {"epochs": 200, "batch_size": 64, "lr": 0.04, "dropout": 0.8, "nesterov": True}),
])
def test_the_study_finetune_recipes(name, settings):
    cfg = load_eval_config("random:slow_r50", f"eval/{name}", [])
    for key, value in settings.items():
        got = cfg.finetune[key]
        assert (list(got) if isinstance(value, list) else got) == value, key
    assert (cfg.test.num_clips, cfg.test.num_crops) == (10, 3)


def test_the_study_linear_recipe():
    cfg = load_eval_config("random:slow_r50", "eval/k400_linear_rho", [])
    assert (cfg.linear.epochs, cfg.linear.batch_size, cfg.linear.weight_decay) == (60, 64, 0.0)
    assert cfg.linear.lr == pytest.approx(2.0)  # SlowFast BASE_LR 0.5 at batch 64 = 2.0 per 256
    assert (cfg.test.num_clips, cfg.test.num_crops) == (10, 3)
