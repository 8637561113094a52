"""Recipes and overrides: typed, strict, and every user mistake is one clear line with exit code 2."""
import subprocess
import sys

import pytest

from videossl.config import load_pretrain_config
from videossl.errors import UserError


def write(tmp_path, text):
    path = tmp_path / "recipe.yaml"
    path.write_text(text)
    return path


def test_recipe_and_overrides_are_typed(tmp_path):
    cfg = load_pretrain_config(write(tmp_path, "method:\n  name: byol\n  momentum_base: 0.9\n"),
                               ["train.epochs=3", "optim.lr=0.5", "data.num_frames=1"])
    assert cfg.method.name == "byol" and cfg.method.momentum_base == 0.9
    assert cfg.train.epochs == 3 and isinstance(cfg.train.epochs, int)
    assert cfg.optim.lr == 0.5 and cfg.data.num_frames == 1


@pytest.mark.parametrize("text,overrides,expected", [
    ("method:\n  name: simclr\n  temperatur: 0.2\n", [], "unknown config key 'method.temperatur'.*did you mean 'method.temperature'"),
    ("method:\n  name: simclr\n", ["trian.epochs=3"], "unknown config key 'trian'.*did you mean 'train'"),
    ("method:\n  name: simclr\n", ["data.num_frame=3"], "did you mean 'data.num_frames'"),
    ("method:\n  name: simclr\n", ["train.epochs=abc"], "bad value for 'train.epochs'.*expected int"),
    ("method:\n  name: simclr\n", ["train.progress=maybe"], "'train.progress'.*expected bool"),
    ("method:\n  name: simclrr\n", [], "unknown method 'simclrr'; did you mean 'simclr'"),
    ("method:\n  name: simclr\n", ["junk"], "not of the form key=value"),
    ("method: [1, 2\n", [], "not valid YAML"),
])
def test_mistakes_name_the_key(tmp_path, text, overrides, expected):
    with pytest.raises(UserError, match=expected):
        load_pretrain_config(write(tmp_path, text), overrides)


@pytest.mark.parametrize("override", ["backbone.pretrained=", 'backbone.pretrained=""', "backbone.pretrained=''"])
def test_an_override_can_set_a_string_to_empty(tmp_path, override):
    """``key=`` is the empty string (as in Hydra), so a recipe's path can be cleared from the command line."""
    recipe = write(tmp_path, "method:\n  name: simclr\nbackbone:\n  pretrained: /weights/r3d.pt\n")
    assert load_pretrain_config(recipe, []).backbone.pretrained == "/weights/r3d.pt"
    assert load_pretrain_config(recipe, [override]).backbone.pretrained == ""


def test_an_empty_override_of_a_number_names_the_key(tmp_path):
    with pytest.raises(UserError, match="bad value for 'train.epochs'.*expected int"):
        load_pretrain_config(write(tmp_path, "method:\n  name: simclr\n"), ["train.epochs="])


def test_missing_recipe_names_the_path(tmp_path):
    with pytest.raises(UserError, match="recipe not found: .*nope.yaml"):
        load_pretrain_config(tmp_path / "nope.yaml", [])


def test_yaml_cannot_construct_objects(tmp_path):
    path = write(tmp_path, "method:\n  name: !!python/object/apply:os.system ['echo pwned']\n")
    with pytest.raises(UserError):
        load_pretrain_config(path, [])


def test_cli_prints_one_line_and_exits_2(tmp_path):
    path = write(tmp_path, "method:\n  name: simclr\n")
    proc = subprocess.run([sys.executable, "-m", "videossl.cli", "pretrain", str(path), "optim.lrr=1"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.strip().splitlines() == ["videossl: error: unknown config key 'optim.lrr' in overrides; did you mean 'optim.lr'?"]
    assert "Traceback" not in proc.stderr


def test_cli_missing_dependency_is_one_line():
    """``pip install --no-deps`` without torch/omegaconf: one line naming the package, not a traceback."""
    code = ("import sys; sys.modules['omegaconf'] = None\n"
            "from videossl.cli import main; sys.exit(main(['list', 'recipes']))")
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.strip().splitlines() == [
        "videossl: error: the Python package 'omegaconf' is not installed; install videossl with its dependencies "
        "(pip install videossl, or `make venv` in a clone)"]


def test_cli_output_into_a_closed_pipe_is_quiet():
    proc = subprocess.run(f"{sys.executable} -m videossl.cli list recipes | head -1", shell=True, capture_output=True,
                          text=True, timeout=120)
    assert proc.stdout.count("\n") == 1 and "Traceback" not in proc.stderr and "BrokenPipe" not in proc.stderr