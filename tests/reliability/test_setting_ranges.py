"""Every numeric and enumerated setting is range-checked when the config is built (issue 20, item 5).

A bad value is a ``UserError`` whose one-line message names the key, the value and what is allowed, raised by
``load_pretrain_config`` / the eval loaders, before anything is built or written. Before the checks, every probe
below either loaded silently (and failed later with a traceback, or trained nothing) or was accepted for good.
"""
from __future__ import annotations

import math
import os
import random
import subprocess
import sys
from dataclasses import fields, is_dataclass

import pytest
from omegaconf import OmegaConf

from videossl import recipes_dir
from videossl.config import load_pretrain_config
from videossl.errors import UserError

RECIPES = recipes_dir()

# (overrides, the key the message must name): the probes of issue 20 item 5, then more of the same kind
PRETRAIN_PROBES = [
    (["optim.lr=-1"], "optim.lr"),
    (["optim.lr=nan"], "optim.lr"),
    (["optim.lr=inf"], "optim.lr"),
    (["data.crop_size=0"], "data.crop_size"),
    (["data.crop_size=-5"], "data.crop_size"),
    (["data.crop_size=100000"], "data.crop_size"),
    (["train.batch_size=0"], "train.batch_size"),
    (["train.log_every=0"], "train.log_every"),
    (["data.num_frames=0"], "data.num_frames"),
    (["data.num_frames=100000"], "data.num_frames"),
    (["data.frame_stride=0"], "data.frame_stride"),
    (["method.num_clips=0"], "method.num_clips"),
    (["backbone.name=no_such_net"], "backbone.name"),
    (["train.precision=fp99"], "train.precision"),
    (["train.devices=0"], "train.devices"),
    (["data.num_workers=-1"], "data.num_workers"),
    (["train.epochs=0"], "train.epochs"),
    (["train.epochs=-1"], "train.epochs"),
    (["train.max_steps=-1"], "train.max_steps"),
    (["optim.accumulate=0"], "optim.accumulate"),
    (["train.ckpt_every=-1"], "train.ckpt_every"),
    (["optim.clip_grad=-1"], "optim.clip_grad"),
    # enumerated settings
    (["data.format=bogus"], "data.format"),
    (["data.decoder=ffmpeg"], "data.decoder"),
    (["optim.name=rmsprop"], "optim.name"),
    (["optim.lr_schedule=poly"], "optim.lr_schedule"),
    (["train.strategy=fsdp_everything"], "train.strategy"),
    (["train.accelerator=tpu9"], "train.accelerator"),
    (["data.format=synthetic", "data.split=val"], "data.split"),
    # more ranges of the shared sections
    (["optim.betas=[0.9,1.5]"], "optim.betas"),
    (["optim.betas=[0.9]"], "optim.betas"),
    (["optim.momentum=2"], "optim.momentum"),
    (["optim.weight_decay=-0.1"], "optim.weight_decay"),
    (["optim.warmup_epochs=-1"], "optim.warmup_epochs"),
    (["optim.lr_milestones=[-1]"], "optim.lr_milestones"),
    (["optim.lr_scale={predictor: -2}"], "optim.lr_scale"),
    (["train.seed=-1"], "train.seed"),
    (["train.num_nodes=0"], "train.num_nodes"),
    (["train.ddp_timeout_s=0"], "train.ddp_timeout_s"),
    (["data.synthetic.size=4"], "data.synthetic.size"),
    (["data.synthetic.num_train=-1"], "data.synthetic.num_train"),
    (["data.decode_timeout_s=-1"], "data.decode_timeout_s"),
    (["data.short_side=-1"], "data.short_side"),
    (["data.split_id=4"], "data.split_id"),
    (["data.prefetch_factor=0"], "data.prefetch_factor"),
    # method settings: the generic pass and the explicit rules
    (["method.temperature=0"], "method.temperature"),
    (["method.gray_p=1.5"], "method.gray_p"),
    (["method.proj_dim=0"], "method.proj_dim"),
    (["method.proj_dim=100000000"], "method.proj_dim"),
    (["method.pairs=everything"], "method.pairs"),
    (["method.crop_scale=[0,1]"], "method.crop_scale"),
    (["method.name=byol", "method.momentum_base=1.5"], "method.momentum_base"),
    (["method.name=moco_v2", "method.queue_size=0"], "method.queue_size"),
    (["method.name=swav", "method.num_prototypes=0"], "method.num_prototypes"),
    (["method.name=swav", "method.epsilon=0"], "method.epsilon"),
    (["method.name=dino", "method.teacher_temp_warmup=-1"], "method.teacher_temp_warmup"),
    (["method.name=dino", "method.student_temp=nan"], "method.student_temp"),
    (["method.name=svt", "method.window_frames=-1"], "method.window_frames"),
    (["method.name=elo", "method.weights.future=nan"], "method.weights.future"),
    (["method.name=elo", "method.streams=[rgb]"], "method.streams"),
    (["method.name=brave", "method.audio_backbone=no_such_net"], "method.audio_backbone"),
    (["method.name=cpc", "method.score=dot"], "method.score"),
    (["method.name=vcop", "method.dropout=1.0"], "method.dropout"),
    (["method.name=mae", "method.mask_ratio=1.5"], "method.mask_ratio"),
    (["method.name=avid", "method.audio_seconds=0"], "method.audio_seconds"),
    (["method.name=jigsaw", "method.permutation_seed=-3"], "method.permutation_seed"),
]


def _one_line_error(overrides: list[str], recipe=None) -> str:
    with pytest.raises(UserError) as info:
        load_pretrain_config(recipe, overrides)
    message = str(info.value)
    assert "\n" not in message, message
    return message


@pytest.mark.parametrize("overrides, key", PRETRAIN_PROBES, ids=lambda p: " ".join(p) if isinstance(p, list) else p)
def test_a_bad_pretraining_value_is_one_line_naming_the_key(overrides, key):
    message = _one_line_error(overrides)
    assert message.startswith(key), message
    assert "must be" in message and "got" in message, message


def test_the_message_says_key_value_and_what_is_allowed():
    assert _one_line_error(["optim.lr=-1"]) == "optim.lr must be a finite number > 0, got -1.0"
    assert _one_line_error(["data.crop_size=100000"]) == "data.crop_size must be an integer in [8, 1024], got 100000"
    assert "did you mean 'tiny_r3d'" in _one_line_error(["backbone.name=tiny_r3dd"])


@pytest.mark.parametrize("accelerator", ["cuda", "gpu"])
def test_a_gpu_accelerator_without_cuda_is_a_user_error(monkeypatch, accelerator):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    message = _one_line_error([f"train.accelerator={accelerator}"])
    assert message.startswith("train.accelerator") and "CUDA" in message, message
    load_pretrain_config(None, ["train.accelerator=cpu"])  # cpu and auto stay fine
    load_pretrain_config(None, ["train.accelerator=auto"])


def test_an_empty_recipe_file_is_an_error_naming_the_file(tmp_path):
    for text in ("", "# only a comment\n", "{}\n"):
        recipe = tmp_path / "empty.yaml"
        recipe.write_text(text)
        message = _one_line_error([], recipe)
        assert str(recipe) in message and "empty" in message, message


def test_the_cli_exits_2_with_one_line_and_writes_nothing(tmp_path):
    run_dir = tmp_path / "run"
    env = dict(os.environ, OMP_NUM_THREADS="1")
    done = subprocess.run([sys.executable, "-m", "videossl.cli", "pretrain", "simclr_synthetic_tiny3d",
                           "optim.lr=-1", f"train.run_dir={run_dir}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 2, done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and "optim.lr" in lines[0] and "-1" in lines[0], done.stderr
    assert "Traceback" not in done.stderr
    assert not run_dir.exists() and not (tmp_path / "runs").exists()


# ------------------------------------------------------------------------------------------- eval configs


EVAL_PROBES = [
    ("linear.epochs=0", "linear.epochs"),
    ("linear.lr=-1", "linear.lr"),
    ("linear.batch_size=0", "linear.batch_size"),
    ("linear.tsne_max_points=0", "linear.tsne_max_points"),
    ("finetune.epochs=0", "finetune.epochs"),
    ("finetune.lr=nan", "finetune.lr"),
    ("finetune.dropout=1.0", "finetune.dropout"),
    ("finetune.momentum=-0.5", "finetune.momentum"),
    ("finetune.warmup_epochs=-1", "finetune.warmup_epochs"),
    ("finetune.gray_p=2", "finetune.gray_p"),
    ("finetune.test_crop_size=-1", "finetune.test_crop_size"),
    ("data.crop_size=0", "data.crop_size"),
    ("data.num_frames=100000", "data.num_frames"),
    ("data.batch_size=0", "data.batch_size"),
    ("data.num_workers=-1", "data.num_workers"),
    ("data.format=bogus", "data.format"),
    ("data.decoder=ffmpeg", "data.decoder"),
    ("data.std=[0.2,0,0.2]", "data.std"),
    ("knn.k=0", "knn.k"),
    ("knn.temperature=nan", "knn.temperature"),
    ("test.num_clips=0", "test.num_clips"),
    ("seed=-1", "seed"),
    ("device=tpu", "device"),
]


@pytest.mark.parametrize("override, key", EVAL_PROBES, ids=lambda p: p)
def test_a_bad_eval_value_is_one_line_naming_the_key(override, key):
    from videossl.eval.config import load_eval_config

    with pytest.raises(UserError) as info:
        load_eval_config("random:tiny_r3d", None, [override])
    assert str(info.value).startswith(key) and "\n" not in str(info.value), str(info.value)


@pytest.mark.parametrize("override, key", [
    ("data.seconds=0", "data.seconds"), ("data.num_windows=0", "data.num_windows"), ("data.n_mels=0", "data.n_mels"),
    ("data.test_fraction=1.5", "data.test_fraction"), ("data.audio_rate=0", "data.audio_rate"),
    ("linear.epochs=0", "linear.epochs"), ("data.format=bogus", "data.format"),
])
def test_a_bad_audio_eval_value_names_the_key(override, key):
    from videossl.eval.audio import load_audio_eval_config

    with pytest.raises(UserError) as info:
        load_audio_eval_config("random:tiny_audio_resnet", None, [override])
    assert str(info.value).startswith(key), str(info.value)


@pytest.mark.parametrize("override, key", [
    ("pairs_per_video=0", "pairs_per_video"), ("data.batch_size=0", "data.batch_size"),
    ("data.max_videos=-1", "data.max_videos"), ("data.audio_seconds=0", "data.audio_seconds"),
    ("data.crop_size=100000", "data.crop_size"),
])
def test_a_bad_avc_value_names_the_key(override, key):
    from videossl.eval.avc import load_avc_config

    with pytest.raises(UserError) as info:
        load_avc_config("runs/x", None, [override])
    assert str(info.value).startswith(key), str(info.value)


def test_an_empty_eval_recipe_is_an_error_naming_the_file(tmp_path):
    from videossl.eval.config import load_eval_config

    recipe = tmp_path / "empty.yaml"
    recipe.write_text("")
    with pytest.raises(UserError, match="empty"):
        load_eval_config("random:tiny_r3d", str(recipe), [])


# ------------------------------------------------------------------- legitimate values are never refused


def test_every_method_default_config_passes():
    from videossl.methods import METHODS

    for name in METHODS:
        load_pretrain_config(None, [f"method.name={name}"])


def test_every_recipe_passes_the_checks():
    """As tests/test_recipes.py: every pretraining recipe, and every eval recipe with its config class (load_config
    applies the eval tables of config_checks.SCHEMA_RULES)."""
    from videossl.config import load_config
    from videossl.eval.config import EVAL_RECIPES_DIR

    for path in sorted(RECIPES.glob("*.yaml")):
        load_pretrain_config(path)
    kinds = {"esc50": "audio", "librispeech": "audio", "avc": "avc"}
    for path in sorted(EVAL_RECIPES_DIR.glob("*.yaml")):
        load_config(_eval_schema(kinds.get(path.stem.split("_")[0], "video")), path)


def test_every_eval_config_class_has_its_table():
    """config_checks finds the eval tables by class name; a renamed class must not lose its checks silently."""
    from videossl.config_checks import schema_rules

    for kind in ("video", "audio", "avc"):
        assert schema_rules(_eval_schema(kind)), kind


def _eval_schema(kind: str):
    from videossl.eval.audio import AudioEvalConfig
    from videossl.eval.avc import AVCEvalConfig
    from videossl.eval.config import EvalConfig

    return {"video": EvalConfig, "audio": AudioEvalConfig, "avc": AVCEvalConfig}[kind]


def _numeric_or_enum_keys(cls, prefix: str = "") -> list[str]:
    """Dotted keys of the int / float / str / list fields of a config dataclass (recursively)."""
    import typing

    keys = []
    hints = typing.get_type_hints(cls)
    for f in fields(cls):
        kind = hints[f.name]
        default = f.default_factory() if callable(f.default_factory) else f.default
        if is_dataclass(default):
            keys += _numeric_or_enum_keys(type(default), f"{prefix}{f.name}.")
        elif kind is not bool:
            keys.append(prefix + f.name)
    return keys


def test_every_setting_of_the_shared_sections_has_a_rule_or_is_free_text():
    """A new field of DataConfig / OptimConfig / TrainConfig / the eval configs needs a rule (or a place in FREE_TEXT)."""
    from videossl.config import Config
    from videossl.config_checks import FREE_TEXT, PRETRAIN_RULES, eval_rules

    missing = [k for k in _numeric_or_enum_keys(Config) if not k.startswith(("method", "reference."))
               and k not in PRETRAIN_RULES and k not in FREE_TEXT]
    assert not missing, f"settings with no range rule: {missing}"
    for kind in ("video", "audio", "avc"):
        rules = eval_rules(kind)
        missing = [k for k in _numeric_or_enum_keys(_eval_schema(kind)) if not k.startswith("reference.")
                   and k not in rules and k not in FREE_TEXT]
        assert not missing, f"{kind} eval settings with no range rule: {missing}"


def test_every_numeric_method_setting_gets_a_rule():
    """The generic pass covers every int / float of every method's dataclass (so a new field is checked too)."""
    from videossl.config_checks import method_rule
    from videossl.methods import METHODS

    for name, cls in METHODS.items():
        cfg = OmegaConf.structured(cls.Config())
        for key in _numeric_or_enum_keys(cls.Config):
            value = OmegaConf.select(cfg, key)
            if isinstance(value, (int, float)) or (OmegaConf.is_list(value) and key != "distill_taps"):
                assert method_rule(name, key, value) is not None, f"{name}: method.{key} has no rule"


def test_the_checks_name_the_same_choices_as_the_code_that_uses_them():
    from videossl.backbones import BACKBONES
    from videossl.config_checks import LR_SCHEDULES, OPTIMIZERS, backbone_names, decoder_names
    from videossl.data.decode import DECODERS
    from videossl.engine import optim

    from videossl.config_checks import eval_rules
    from videossl.eval.config import SPLIT_CHOICES
    from videossl.eval.multi_view import COMBINE_CHOICES

    assert OPTIMIZERS == optim.OPTIMIZERS and LR_SCHEDULES == optim.LR_SCHEDULES
    assert set(backbone_names()) == set(BACKBONES) and set(decoder_names()) == set(DECODERS)
    rules = eval_rules("video")
    assert rules["data.split"].names() == list(SPLIT_CHOICES)
    assert rules["test.multi_view_combine"].names() == list(COMBINE_CHOICES)


def test_random_values_load_or_name_their_key():
    """Seeded fuzz: any number in any numeric setting either loads or is a UserError naming that key."""
    from videossl.config_checks import PRETRAIN_RULES, Num

    rng = random.Random(0)
    numeric = sorted(k for k, rule in PRETRAIN_RULES.items() if isinstance(rule, Num))
    values = [0, -1, 1, 3, 10**9, -(10**9), 10**400, 0.5, 1.5, 1e-9, math.inf, -math.inf, math.nan]
    for _ in range(60):
        key, value = rng.choice(numeric), rng.choice(values)
        rule = PRETRAIN_RULES[key]
        if rule.integer and isinstance(value, float):
            continue  # the schema refuses a float for an int (its own message)
        try:
            load_pretrain_config(None, [f"{key}={value}"])
        except UserError as err:
            assert str(err).startswith(key), (key, value, str(err))
