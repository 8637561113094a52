"""EvalConfig loading, overrides and the checks with clear messages."""
import pytest

from videossl.errors import UserError
from videossl.eval.config import load_eval_config
from videossl.eval.frozen import split_ids


def test_defaults_and_overrides(tmp_path):
    recipe = tmp_path / "r.yaml"
    recipe.write_text("knn:\n  k: 5\ndata:\n  format: ucf101\n")
    cfg = load_eval_config("random:tiny_r3d", str(recipe), ["test.num_clips=2", "data.split=all"])
    assert cfg.encoder == "random:tiny_r3d"
    assert cfg.knn.k == 5 and cfg.knn.temperature == pytest.approx(0.07)
    assert cfg.test.num_clips == 2 and cfg.test.num_crops == 3
    assert split_ids(cfg.data) == [1, 2, 3]
    assert cfg.retrieval.ks == [1, 5, 10, 20]


def test_unknown_key_is_a_user_error():
    with pytest.raises(UserError, match="knn"):
        load_eval_config("random:tiny_r3d", None, ["knn.kk=3"])


@pytest.mark.parametrize("override, words", [
    ("data.split=4", "data.split"), ("test.num_crops=2", "test.num_crops"), ("knn.temperature=0", "knn.temperature"),
    ("linear.optimizer=lbfgs", "linear.optimizer"),
])
def test_bad_values_name_the_key(override, words):
    with pytest.raises(UserError, match=words):
        load_eval_config("random:tiny_r3d", None, [override])


def test_split_all_needs_official_splits():
    cfg = load_eval_config("random:tiny_r3d", None, ["data.format=folder", "data.split=all"])
    with pytest.raises(UserError, match="ucf101, hmdb51"):
        split_ids(cfg.data)
