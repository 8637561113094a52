"""VideoMAE / TimeSformer / ViViT: same numbers as transformers at the built shape, any T/H/W otherwise,
SDPA attention, keep_index for MAE."""
import pytest
import torch

from videossl.backbones import create_backbone

BUILT = {"tiny_videomae": 8, "tiny_timesformer": 4, "tiny_vivit": 8}


def _reference(backbone, x):
    """transformers' own forward: ``(cls or None, patch tokens in (t, h, w) order)``."""
    ref = backbone.model(pixel_values=x.transpose(1, 2)).last_hidden_state
    name = type(backbone).__name__
    if name == "VideoMAEBackbone":
        return None, ref
    cls, tokens = ref[:, 0], ref[:, 1:]
    if name == "TimesformerBackbone":  # transformers orders TimeSformer tokens (h, w, t)
        t = x.shape[2]
        tokens = tokens.reshape(x.shape[0], -1, t, ref.shape[-1]).transpose(1, 2).flatten(1, 2)
    return cls, tokens


@pytest.mark.parametrize("name", sorted(BUILT))
def test_matches_transformers_at_built_shape(name):
    backbone = create_backbone(name).eval()
    x = torch.randn(2, 3, BUILT[name], 32, 32)
    with torch.no_grad():
        ref_cls, ref_tokens = _reference(backbone, x)
        cls, tokens, _ = backbone.encode(x)
    torch.testing.assert_close(tokens, ref_tokens, atol=1e-5, rtol=1e-4)
    if ref_cls is not None:
        torch.testing.assert_close(cls, ref_cls, atol=1e-5, rtol=1e-4)
        torch.testing.assert_close(backbone(x), ref_cls, atol=1e-5, rtol=1e-4)
    else:
        torch.testing.assert_close(backbone(x), ref_tokens.mean(1), atol=1e-5, rtol=1e-4)


@pytest.mark.parametrize("name", sorted(BUILT))
def test_other_frames_and_sizes(name):
    """SVT's local views: fewer frames, smaller crops, non-square -- tokens follow the grid."""
    backbone = create_backbone(name).eval()
    for t, h, w in [(2, 16, 16), (12, 48, 24)]:
        x = torch.randn(1, 3, t, h, w)
        tokens = backbone.forward_tokens(x)
        n = (t // backbone.tubelet_size) * (h // backbone.patch_size) * (w // backbone.patch_size)
        assert tokens.shape == (1, n, backbone.num_features)
        assert torch.isfinite(backbone(x)).all()


def test_bad_grid_is_a_clear_error():
    with pytest.raises(ValueError, match="multiples of tubelet_size=2 and patch_size=8"):
        create_backbone("tiny_videomae")(torch.randn(1, 3, 3, 32, 32))


def test_sdpa_is_selected():
    assert create_backbone("tiny_videomae").model.config._attn_implementation == "sdpa"
    assert create_backbone("tiny_vivit").model.config._attn_implementation == "sdpa"


@pytest.mark.parametrize("name", ["tiny_videomae", "tiny_vivit"])
def test_keep_index_runs_on_visible_tokens(name):
    backbone = create_backbone(name).eval()
    x = torch.randn(2, 3, 8, 32, 32)  # 4 * 4 * 4 = 64 tokens
    with torch.no_grad():
        full = backbone.forward_tokens(x)
        same = backbone.forward_tokens(x, torch.arange(64).expand(2, 64))
        keep = torch.stack([torch.randperm(64)[:16] for _ in range(2)])
        visible = backbone.forward_tokens(x, keep)
    torch.testing.assert_close(same, full)
    assert visible.shape == (2, 16, backbone.num_features)
    # attention only saw the visible tokens, so they differ from the same positions of the full pass
    assert not torch.allclose(visible, full.gather(1, keep[..., None].expand(-1, -1, full.shape[-1])), atol=1e-4)


def test_timesformer_rejects_keep_index():
    with pytest.raises(ValueError, match="keep_index"):
        create_backbone("tiny_timesformer").forward_tokens(torch.randn(1, 3, 4, 32, 32), torch.zeros(1, 4).long())


def test_position_tables_interpolate_smoothly():
    """A 2x larger input reuses the built table (interpolated), not a fresh or truncated one."""
    backbone = create_backbone("tiny_vivit").eval()
    table = backbone.model.embeddings.position_embeddings[:, 1:]
    from videossl.backbones.video_vit import _interpolate_grid

    same = _interpolate_grid(table, (4, 4, 4), (4, 4, 4), "linear")
    bigger = _interpolate_grid(table, (4, 4, 4), (8, 8, 8), "linear")
    assert same is table and bigger.shape == (1, 512, table.shape[-1])
    torch.testing.assert_close(bigger.mean(), table.mean(), atol=1e-3, rtol=0.1)
