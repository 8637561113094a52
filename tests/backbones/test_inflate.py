"""Image ViT -> TimeSformer inflation (TimeSformer / SVT initialisation) from local files only."""
import pytest
import torch

from videossl.backbones import create_backbone
from videossl.backbones.inflate import canonical_image_vit, image_vit_to_timesformer, inflate_image_vit
from videossl.backbones.weights import WeightsError


def tiny_vit(image_size=32, hidden=64, layers=2):
    """A randomly initialised transformers ViT shaped like ``tiny_timesformer`` (LayerNorm eps as TimeSformer)."""
    from transformers import ViTConfig, ViTModel

    config = ViTConfig(hidden_size=hidden, num_hidden_layers=layers, num_attention_heads=2,
                       intermediate_size=4 * hidden, image_size=image_size, patch_size=8, layer_norm_eps=1e-6)
    return ViTModel(config, add_pooling_layer=False).eval()


@pytest.fixture(scope="module")
def saved_vit(tmp_path_factory):
    torch.manual_seed(0)
    vit = tiny_vit()
    folder = tmp_path_factory.mktemp("vit") / "vit_pretrained"
    vit.save_pretrained(folder)  # transformers' file layout: encoder.layer.0.attention.attention.query ...
    return vit, folder


def test_inflated_timesformer_is_the_image_vit_on_every_frame(saved_vit):
    vit, folder = saved_vit
    video = create_backbone("tiny_timesformer").eval()
    assert inflate_image_vit(video, folder) == []
    image = torch.randn(2, 3, 32, 32)
    with torch.no_grad():
        expected = vit(pixel_values=image).last_hidden_state[:, 0]  # CLS after the final LayerNorm
        single = video.forward_features(image[:, :, None])  # T=1
        static = video.forward_features(image[:, :, None].expand(-1, -1, 3, -1, -1))  # a still video
    # zero temporal projection and zero time table: the video model starts as the image model per frame
    torch.testing.assert_close(single, expected, atol=1e-5, rtol=1e-4)
    torch.testing.assert_close(static, expected, atol=1e-5, rtol=1e-4)


def test_temporal_branch_is_initialised_as_timesformer(saved_vit):
    _, folder = saved_vit
    video = create_backbone("tiny_timesformer")
    inflate_image_vit(video, folder)
    layer = video.model.encoder.layer[1]
    assert torch.equal(layer.temporal_attention.attention.qkv.weight, layer.attention.attention.qkv.weight)
    assert torch.equal(layer.temporal_layernorm.weight, layer.layernorm_before.weight)
    assert not layer.temporal_dense.weight.any() and not layer.temporal_dense.bias.any()
    assert not video.model.embeddings.time_embeddings.any()


def test_timm_and_dino_layout_with_wrapper_prefixes(saved_vit, tmp_path):
    vit, _ = saved_vit
    timm_state, left_out = canonical_image_vit(vit.state_dict())  # transformers 5 in-memory names -> timm names
    assert left_out == [] and "blocks.0.attn.qkv.weight" in timm_state
    path = tmp_path / "dino_checkpoint.pth"
    torch.save({"model": {f"module.backbone.{k}": v for k, v in timm_state.items()}
                | {"module.head.last_layer.weight": torch.zeros(4, 4)}}, path)
    a, b = create_backbone("tiny_timesformer"), create_backbone("tiny_timesformer")
    assert inflate_image_vit(a, path) == ["head.last_layer.weight"]
    state, _ = image_vit_to_timesformer(vit.state_dict(), b)
    b.load_state_dict(state)
    for key, value in a.state_dict().items():
        assert torch.equal(value, b.state_dict()[key]), key


def test_position_table_is_resized_for_another_image_size(tmp_path):
    torch.manual_seed(1)
    vit = tiny_vit(image_size=48)  # 6x6 patches
    vit.save_pretrained(tmp_path / "vit48")
    video = create_backbone("tiny_timesformer")  # built for 32 px: 4x4 patches
    inflate_image_vit(video, tmp_path / "vit48")
    table = video.model.embeddings.position_embeddings
    assert table.shape == (1, 17, 64)
    assert torch.equal(table[:, :1], vit.embeddings.position_embeddings[:, :1].detach())  # CLS entry copied


def test_mismatched_checkpoints_raise_weights_error(tmp_path):
    torch.manual_seed(2)
    wide = tiny_vit(hidden=32)
    wide.save_pretrained(tmp_path / "wide")
    with pytest.raises(WeightsError, match="wide.*expects"):
        inflate_image_vit(create_backbone("tiny_timesformer"), tmp_path / "wide")
    deep = tiny_vit(layers=3)
    deep.save_pretrained(tmp_path / "deep")
    with pytest.raises(WeightsError, match="3 transformer blocks"):
        inflate_image_vit(create_backbone("tiny_timesformer"), tmp_path / "deep")
    with pytest.raises(WeightsError, match="no such file"):
        inflate_image_vit(create_backbone("tiny_timesformer"), tmp_path / "missing.pth")
    with pytest.raises(WeightsError, match="TimeSformer backbone"):
        inflate_image_vit(create_backbone("tiny_videomae"), tmp_path / "deep")
