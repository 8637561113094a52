"""Frame-wise 2D wrapper, audio towers, DPC's 2D3D-ResNet and the run-time options (channels_last, compile)."""
import copy

import pytest
import torch

from videossl.backbones import create_backbone


def test_framewise_resnet_at_t1_is_the_image_model():
    import torchvision

    ours = create_backbone("resnet18").eval()
    image_model = torchvision.models.resnet18(weights=None)
    image_model.fc = torch.nn.Identity()
    image_model.load_state_dict({k[len("model."):]: v for k, v in ours.state_dict().items()})
    x = torch.randn(2, 3, 1, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), image_model.eval()(x[:, :, 0]), atol=0, rtol=0)


@pytest.mark.parametrize("name", ["tiny_r2d", "tiny_vit2d"])
def test_framewise_folds_time_and_averages(name):
    backbone = create_backbone(name).eval()
    x = torch.randn(2, 3, 3, 32, 32)
    with torch.no_grad():
        per_frame = torch.stack([backbone(x[:, :, i : i + 1]) for i in range(3)], dim=1)
        torch.testing.assert_close(backbone(x), per_frame.mean(dim=1), atol=1e-5, rtol=1e-4)
        swapped = backbone(x.flip(2))  # frame order does not matter to a frame-wise model
        torch.testing.assert_close(swapped, backbone(x), atol=1e-5, rtol=1e-4)


def test_cpc_encoder_shapes_and_causal_context():
    cpc = create_backbone("cpc_encoder", width=32, context_dim=16).eval()
    wave = torch.randn(2, 1, 16000)  # 1 s at 16 kHz -> 100 steps of 10 ms
    with torch.no_grad():
        z = cpc.encode(wave)
        c = cpc.context(z)
        assert z.shape == (2, 100, 32) and c.shape == (2, 100, 16)
        later = wave.clone()
        later[..., 8000:] = torch.randn(2, 1, 8000)
        c2 = cpc.context(cpc.encode(later))
    torch.testing.assert_close(c2[:, :45], c[:, :45])  # c_t sees only the past
    assert not torch.allclose(c2[:, 60:], c[:, 60:])
    assert cpc.num_features == 16 and cpc(wave).shape == (2, 16)


def test_cpc_total_stride_is_160():
    cpc = create_backbone("cpc_encoder")
    stride = 1
    for conv in cpc.convs:
        stride *= conv[0].stride[0]
        assert conv[0].out_channels == 512
    assert stride == 160 and len(cpc.convs) == 5


def test_audio_resnet_on_log_mel():
    net = create_backbone("tiny_audio_resnet").eval()
    mel = torch.randn(2, 1, 64, 96)
    assert net.forward_tokens(mel).shape == (2, 128, 2, 3)
    with pytest.raises(ValueError, match="log-mel"):
        net(torch.randn(2, 1, 4, 64, 96))


def test_dpc_resnet_shapes():
    """A 5-frame block at 64 px: time /4 (ceil) in the two 3D stages, space /32, 256 channels."""
    net = create_backbone("r2d3d_18").eval()
    with torch.no_grad():
        taps = net.feature_taps(torch.randn(1, 3, 5, 64, 64))
    assert taps["stage1"].shape == (1, 64, 5, 16, 16)  # 2D stages keep time
    assert taps["stage2"].shape == (1, 128, 5, 8, 8)
    assert taps["stage4"].shape == (1, 256, 2, 2, 2)
    assert net.num_features == 256


@pytest.mark.parametrize("name", ["tiny_r3d", "tiny_r2d", "r2d3d_18"])
def test_channels_last_changes_layout_not_numbers(name):
    torch.manual_seed(0)
    plain = create_backbone(name).eval()
    fast = create_backbone(name, channels_last=True).eval()
    fast.load_state_dict(plain.state_dict())
    conv = next(m for m in fast.modules() if isinstance(m, (torch.nn.Conv2d, torch.nn.Conv3d)))
    fmt = torch.channels_last_3d if isinstance(conv, torch.nn.Conv3d) else torch.channels_last
    assert conv.weight.is_contiguous(memory_format=fmt)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(fast(x), plain(x), atol=1e-5, rtol=1e-4)


def test_channels_last_is_skipped_for_transformers():
    assert create_backbone("tiny_videomae", channels_last=True).memory_format is None


@pytest.mark.slow
def test_compile_matches_eager_and_survives_deepcopy():
    plain = create_backbone("tiny_r3d").eval()
    compiled = create_backbone("tiny_r3d", compile=True).eval()
    compiled.load_state_dict(plain.state_dict())
    teacher = copy.deepcopy(compiled)  # an EMA teacher: must run its own weights
    with torch.no_grad():
        for p in teacher.parameters():
            p.mul_(0.5)
    x = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(compiled(x), plain(x), atol=1e-4, rtol=1e-3)
        assert not torch.allclose(teacher(x), compiled(x))
