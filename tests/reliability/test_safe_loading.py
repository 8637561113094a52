"""Checkpoints and encoder.pt load with weights_only=True: a malicious pickle is refused, never executed; YAML
recipes never construct Python objects."""
import pickle

import pytest
import torch

from videossl.backbones import load_encoder
from videossl.config import load_pretrain_config
from videossl.engine.checkpoint import CheckpointError
from videossl.engine.trainer import pretrain
from videossl.errors import UserError


class Payload:
    """Unpickling this creates ``marker``: proof that the file was executed."""

    def __init__(self, marker):
        self.marker = str(marker)

    def __reduce__(self):
        return (open, (self.marker, "w"))


def write_evil(path, marker, key="model"):
    with open(path, "wb") as f:
        pickle.dump({key: Payload(marker), "step": 1}, f)


def test_malicious_checkpoint_is_refused_on_resume(tiny_pool, tmp_path, tools):
    evil, marker = tmp_path / "evil.ckpt", tmp_path / "pwned"
    write_evil(evil, marker)
    cfg = load_pretrain_config(None, ["method.name=simclr", f"train.resume={evil}"] +
                               tools.tiny_args(tiny_pool, tmp_path / "run", 2, frames=1))
    with pytest.raises(CheckpointError, match="refusing to load .*evil.ckpt: it is not a plain-tensor checkpoint"):
        pretrain(cfg)
    assert not marker.exists()


def test_malicious_encoder_is_refused(tmp_path):
    evil, marker = tmp_path / "encoder.pt", tmp_path / "pwned"
    write_evil(evil, marker, key="state_dict")
    with pytest.raises(UserError, match="refusing to load .*encoder.pt: it is not a plain-tensor encoder file"):
        load_encoder(evil)
    assert not marker.exists()
    # the CLI path too: an evaluation given such an encoder exits with the one-line error, the payload never runs
    from videossl.cli import main

    assert main(["eval", "knn", str(evil), f"out_dir={tmp_path / 'eval'}"]) == 2
    assert not marker.exists()
    junk = tmp_path / "junk.pt"
    torch.save({"weights": torch.zeros(2)}, junk)
    with pytest.raises(UserError, match="junk.pt: not an encoder file written by videossl"):
        load_encoder(junk)


@pytest.mark.parametrize("tag", ["!!python/object/apply:builtins.open", "!!python/object/new:builtins.open"])
def test_yaml_recipes_construct_no_objects(tmp_path, tag):
    marker = tmp_path / "pwned"
    recipe = tmp_path / "evil.yaml"
    recipe.write_text(f"method:\n  name: simclr\ntrain:\n  run_dir: {tag} ['{marker}', 'w']\n")
    with pytest.raises(UserError, match="evil.yaml"):
        load_pretrain_config(recipe, [])
    assert not marker.exists()
