"""`videossl show attention`: the hooked-and-recomputed attention equals transformers' eager attention
weights of the last block, CNN maps are the channel mean of the last feature map, and the command writes
a PNG and a GIF."""
import pytest
import torch

from videossl.backbones import create_backbone
from videossl.errors import UserError
from videossl.viz.attention import activation_map, encoder_maps, maps_on_clip, vit_attention


def _eager_weights(backbone, module, clip, call):
    """Run the backbone, catch ``module``'s input, and recompute it with the eager attention path.

    Our TimeSformer driver calls the attention's ``qkv`` but not the module itself: its input is the same."""
    seen = []
    watched = getattr(module, "qkv", module)
    hook = watched.register_forward_pre_hook(lambda _m, args: seen.append(args[0]))
    with torch.no_grad():
        backbone.forward_features(clip)
    hook.remove()
    backbone.model.config._attn_implementation = "eager"
    with torch.no_grad():
        return call(module, seen[-1])


@pytest.mark.parametrize("name, frames, module_of, call, pick", [
    ("tiny_vivit", 4, lambda b: b.model.layers[-1].attention,
     lambda m, x: m(x)[1], lambda w: w[:, :, 0, 1:]),
    ("tiny_vit2d", 2, lambda b: b.model.layers[-1].attention,
     lambda m, x: m(x)[1], lambda w: w[:, :, 0, 1:]),
    ("tiny_videomae", 4, lambda b: b.model.encoder.layer[-1].attention.attention,
     lambda m, x: m(x)[1], lambda w: w.mean(dim=2)),
    ("tiny_timesformer", 3, lambda b: b.model.encoder.layer[-1].attention.attention,
     lambda m, x: m(x, output_attentions=True)[1], lambda w: w[:, :, 0, 1:]),
])
def test_vit_attention_matches_eager_weights(name, frames, module_of, call, pick):
    backbone = create_backbone(name).eval()
    clip = torch.randn(2, 3, frames, 32, 40)
    result = vit_attention(backbone, clip)
    eager = pick(_eager_weights(backbone, module_of(backbone), clip, call)).float()
    heads = backbone.model.config.num_attention_heads
    b, gh, gw = 2, 32 // 8, 40 // 8
    gt = frames // getattr(backbone, "tubelet_size", 1)
    assert result.maps.shape == (b, heads, gt, gh, gw)
    if eager.shape[0] == b * gt:  # per-frame CLS attention: (B*T, heads, h*w)
        eager = eager.reshape(b, gt, heads, gh, gw).transpose(1, 2)
    torch.testing.assert_close(result.maps, eager.reshape(result.maps.shape), atol=1e-5, rtol=1e-4)
    assert result.kind == ("received" if name == "tiny_videomae" else "cls")


def test_cnn_activation_map_is_channel_mean_of_last_feature_map():
    backbone = create_backbone("tiny_r3d").eval()
    clip = torch.randn(1, 3, 8, 32, 32)
    result = encoder_maps(backbone, clip)
    with torch.no_grad():
        tokens = backbone.forward_tokens(clip)
    assert result.kind == "activation"
    torch.testing.assert_close(result.maps[:, 0], tokens.mean(dim=1))
    heat = maps_on_clip(result.maps[0], (8, 32, 32))
    assert heat.shape == (1, 8, 32, 32) and heat.min() == 0 and heat.max() == 1


def test_activation_map_follows_a_bright_object():
    # A 3D CNN at random init responds most where the input has structure: a bright square on a flat clip.
    torch.manual_seed(0)
    backbone = create_backbone("tiny_r2d").eval()
    clip = torch.zeros(1, 3, 2, 64, 64)
    clip[..., 40:60, 40:60] = 3.0
    heat = maps_on_clip(activation_map(backbone, clip).maps[0], (2, 64, 64))[0]
    assert heat[:, 36:64, 36:64].mean() > heat[:, :28, :28].mean()


def test_audio_backbone_and_bad_sizes_are_user_errors():
    with pytest.raises(UserError, match="audio"):
        encoder_maps(create_backbone("tiny_audio_resnet"), torch.zeros(1, 1, 64, 50))
    with pytest.raises(UserError, match="multiples"):
        vit_attention(create_backbone("tiny_timesformer"), torch.zeros(1, 3, 2, 30, 30))


def test_show_attention_command(tiny_pool, tmp_path):
    from PIL import Image

    from videossl.cli import main

    video = sorted(tiny_pool.rglob("*.mp4"))[0]
    code = main(["show", "attention", "random:tiny_timesformer", str(video), "--frames", "4", "--size", "32",
                 "--out", str(tmp_path)])
    assert code == 0
    png = Image.open(tmp_path / "attention.png")
    assert png.size[1] > 200  # rows: frames, head 0, head 1, mean
    assert Image.open(tmp_path / "attention.gif").n_frames == 4
    assert main(["show", "attention", "random:tiny_r3d", str(tmp_path / "missing.mp4")]) == 2
