"""SVT's multi-view inference option (``test.multi_view``) of the linear / kNN and fine-tune protocols."""
import pytest
import torch

from videossl.errors import UserError
from videossl.eval import features as features_module
from videossl.eval import load_eval_config, run_finetune, run_frozen_protocols
from videossl.eval.features import CachedFeatures
from videossl.eval.multi_view import combine_features, parse_geometry, view_geometries


def _cfg(root, out_dir, *extra):
    return load_eval_config("random:tiny_timesformer", None, [
        "data.format=folder", f"data.root={root}", "data.num_frames=4", "data.frame_stride=2", "data.crop_size=32",
        "data.num_workers=0", "data.batch_size=4", "test.num_clips=2", "test.num_crops=1", "linear.train_clips=1",
        "linear.epochs=5", "linear.tsne=false", "progress=false", f"out_dir={out_dir}", *extra])


@pytest.fixture(autouse=True)
def _fresh_cache():
    features_module.clear_feature_cache()
    yield
    features_module.clear_feature_cache()


def test_geometries_parse_and_bad_ones_are_user_errors(tmp_path):
    assert parse_geometry("8x32x224") == (8, 32, 224)
    cfg = _cfg(tmp_path, tmp_path)
    assert view_geometries(cfg) == [(4, 2, 32)]  # no multi_view: the data's own clip
    with pytest.raises(UserError, match="test.multi_view: '8x32' is not"):
        _cfg(tmp_path, tmp_path, "test.multi_view=[8x32]")
    with pytest.raises(UserError, match="multi_view_combine"):
        _cfg(tmp_path, tmp_path, "test.multi_view=[8x2x32]", "test.multi_view_combine=max")


def test_combine_concatenates_or_averages_per_view():
    a = CachedFeatures(torch.ones(3, 2, 4), torch.tensor([0, 1, 2]), ["a", "b", "c"])
    b = CachedFeatures(3 * torch.ones(3, 2, 4), torch.tensor([0, 1, 2]), ["a", "b", "c"])
    assert combine_features([a, b], "concat").features.shape == (3, 2, 8)
    assert torch.equal(combine_features([a, b], "mean").features, 2 * torch.ones(3, 2, 4))
    short = CachedFeatures(torch.ones(2, 2, 4), torch.tensor([0, 1]), ["a", "b", "c"], ("gone.mp4",))
    with pytest.raises(UserError, match="different videos"):
        combine_features([a, short])


def test_frozen_protocols_extract_every_geometry_and_combine(colour_folder_dataset, tmp_path, monkeypatch):
    shapes = []
    real = features_module.forward_distinct_views

    def recording(views, forward, device, chunk=64):
        shapes.append(tuple(views.shape[2:]))  # (C, T, H, W) of the clips this geometry feeds the encoder
        return real(views, forward, device, chunk)

    monkeypatch.setattr(features_module, "forward_distinct_views", recording)
    cfg = _cfg(colour_folder_dataset, tmp_path / "concat", "test.multi_view=[4x2x32,2x4x16]")
    results = run_frozen_protocols(cfg, ("knn",))
    assert {(3, 4, 32, 32), (3, 2, 16, 16)} == set(shapes)  # frame counts and sizes the backbone was built for and not
    assert results["knn"]["splits"][0]["feature_dim"] == 2 * 64  # tiny_timesformer: 64-d, two geometries joined
    assert results["knn"]["top1"] >= 0.8  # colour classes: a label/feature mix-up across geometries would be chance

    mean = run_frozen_protocols(_cfg(colour_folder_dataset, tmp_path / "mean", "test.multi_view=[4x2x32,2x4x16]",
                                     "test.multi_view_combine=mean"), ("knn",))
    assert mean["knn"]["splits"][0]["feature_dim"] == 64


def test_finetune_tests_on_the_views_of_every_geometry(colour_folder_dataset, tmp_path, monkeypatch):
    from videossl.eval import finetune

    seen = []
    real = finetune.multi_view_test_scores

    def recording(*args, **kwargs):
        out = real(*args, **kwargs)
        seen.append(tuple(out.features.shape))
        return out

    monkeypatch.setattr(finetune, "multi_view_test_scores", recording)  # the name fine-tuning calls
    cfg = _cfg(colour_folder_dataset, tmp_path, "test.multi_view=[4x2x32,2x4x16]", "finetune.epochs=1",
               "finetune.batch_size=4", "finetune.warmup_epochs=0")
    result = run_finetune(cfg)
    assert seen == [(6, 4, 3)]  # 6 test videos x (2 geometries x 2 clips) views x 3 classes
    assert 0.0 <= result["top1"] <= 1.0
