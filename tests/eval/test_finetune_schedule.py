"""finetune.lr_schedule: cosine (default), constant (VCOP's ft_classify.py) and step (PRP's StepLR)."""
import math

import pytest
from omegaconf import OmegaConf

from videossl.errors import UserError
from videossl.eval.config import FinetuneConfig, load_eval_config
from videossl.eval.finetune import finetune_lr_factor, warmup_cosine


def _settings(**kw):
    return OmegaConf.structured(FinetuneConfig(**kw))


def test_default_is_the_warmup_cosine():
    settings = _settings()
    assert settings.lr_schedule == "cosine"
    for step in (0, 5, 50, 99):
        assert finetune_lr_factor(step, 10, 100, 10, settings) == warmup_cosine(step, 10, 100)


def test_constant_after_the_warmup():
    settings = _settings(lr_schedule="constant")
    assert finetune_lr_factor(0, 4, 100, 10, settings) == pytest.approx(0.25)
    assert [finetune_lr_factor(s, 0, 100, 10, settings) for s in (0, 50, 99)] == [1.0, 1.0, 1.0]


def test_step_multiplies_by_gamma_at_each_milestone_epoch():
    settings = _settings(lr_schedule="step", lr_milestones=[100, 150], lr_gamma=0.1)
    steps_per_epoch = 7
    assert finetune_lr_factor(99 * steps_per_epoch, 0, 10**6, steps_per_epoch, settings) == 1.0
    assert finetune_lr_factor(100 * steps_per_epoch, 0, 10**6, steps_per_epoch, settings) == pytest.approx(0.1)
    assert math.isclose(finetune_lr_factor(150 * steps_per_epoch, 0, 10**6, steps_per_epoch, settings), 0.01)


def test_unknown_schedule_is_a_user_error():
    with pytest.raises(UserError, match="finetune.lr_schedule"):
        load_eval_config("random:tiny_r3d", None, ["finetune.lr_schedule=poly"])
