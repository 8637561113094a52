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


def _saved_encoder(tmp_path, clip):
    from videossl.backbones import create_backbone, save_encoder

    path = tmp_path / "encoder.pt"
    save_encoder(path, create_backbone("tiny_r3d"), "tiny_r3d", {}, clip=clip)
    return path


def test_evaluation_takes_the_encoders_clip_geometry_unless_told_otherwise(tmp_path):
    clip = {"num_frames": 4, "frame_stride": 3, "crop_size": 48, "short_side": 0,
            "mean": [0.5, 0.4, 0.3], "std": [0.2, 0.2, 0.2]}
    encoder = str(_saved_encoder(tmp_path, clip))
    cfg = load_eval_config(encoder)
    assert (cfg.data.num_frames, cfg.data.frame_stride, cfg.data.crop_size) == (4, 3, 48)
    assert list(cfg.data.mean) == [0.5, 0.4, 0.3] and list(cfg.data.std) == [0.2, 0.2, 0.2]
    recipe = tmp_path / "protocol.yaml"
    recipe.write_text("data:\n  crop_size: 112\n")  # an eval recipe that fixes the crop, as a paper's protocol may
    cfg = load_eval_config(encoder, str(recipe), ["data.num_frames=16"])  # and the command line wins over both
    assert (cfg.data.num_frames, cfg.data.frame_stride, cfg.data.crop_size) == (16, 3, 112)


def test_random_and_old_encoders_fall_back_to_the_default_clip(tmp_path):
    from videossl.eval.config import DEFAULT_CLIP
    from videossl.transforms.video import VIDEO_MEAN

    for encoder in ("random:tiny_r3d", str(_saved_encoder(tmp_path, None))):  # None: a file without a clip record
        cfg = load_eval_config(encoder)
        assert {k: cfg.data[k] for k in DEFAULT_CLIP} == DEFAULT_CLIP
        assert tuple(cfg.data.mean) == VIDEO_MEAN


def test_eval_recipe_by_name_and_as_first_positional(tmp_path, monkeypatch):
    import argparse

    from videossl.eval import config as eval_config
    from videossl.eval.commands import split_recipe_and_encoder

    (tmp_path / "my_protocol.yaml").write_text("finetune:\n  epochs: 7\n")
    monkeypatch.setattr(eval_config, "EVAL_RECIPES_DIR", tmp_path)
    cfg = load_eval_config("random:tiny_r3d", "eval/my_protocol")
    assert cfg.finetune.epochs == 7
    args = argparse.Namespace(encoder="eval/my_protocol", overrides=["random:tiny_r3d", "seed=3"], recipe=None)
    assert split_recipe_and_encoder(args) == ("eval/my_protocol", "random:tiny_r3d", ["seed=3"])
    args = argparse.Namespace(encoder="random:tiny_r3d", overrides=["seed=3"], recipe=None)
    assert split_recipe_and_encoder(args) == (None, "random:tiny_r3d", ["seed=3"])
    with pytest.raises(UserError, match="give the encoder"):
        split_recipe_and_encoder(argparse.Namespace(encoder="eval/my_protocol", overrides=["seed=3"], recipe=None))
    with pytest.raises(UserError, match="eval recipe not found"):
        load_eval_config("random:tiny_r3d", "eval/nope")
