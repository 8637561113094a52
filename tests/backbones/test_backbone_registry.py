"""Every BACKBONES entry, the timm way: tiny variants run forward + backward at T=1 and T=8 in CI; big
models build on the meta device and count parameters (their forward passes are marked slow)."""
import pytest
import torch

from videossl.backbones import BACKBONE_CARDS, BACKBONES, count_parameters, create_backbone, describe_backbones

TINY = sorted(name for name in BACKBONES if name.startswith("tiny_"))
BIG = sorted(name for name in BACKBONES if not name.startswith("tiny_"))


def tiny_input(backbone, t: int, size: int = 32, batch: int = 2) -> torch.Tensor:
    """A small input in the form the backbone expects (video clip, log-mel or waveform)."""
    name = type(backbone).__name__
    if name == "CPCEncoder":
        return torch.randn(batch, 1, 1600)  # 10 steps of 160 samples
    if name == "AudioResNet":
        return torch.randn(batch, 1, 32, 48)  # (n_mels, frames)
    t = max(t, 2) if getattr(backbone, "tubelet_size", 1) == 2 else t
    return torch.randn(batch, 3, t, size, size)


def test_every_entry_has_a_card():
    assert set(BACKBONE_CARDS) == set(BACKBONES)


def test_unknown_name_suggests_the_closest():
    with pytest.raises(KeyError, match="did you mean 'r3d_18'"):
        create_backbone("r3d18")


@pytest.mark.parametrize("name", TINY)
@pytest.mark.parametrize("t", [1, 8])
def test_tiny_forward_backward(name, t):
    backbone = create_backbone(name)
    x = tiny_input(backbone, t)
    feats = backbone(x)
    assert feats.shape == (2, backbone.num_features)
    assert torch.isfinite(feats).all()
    feats.square().mean().backward()
    grads = [p.grad for p in backbone.parameters() if p.requires_grad]
    assert all(g is not None for g in grads), "every parameter gets a gradient (no unused weights for DDP)"
    assert sum(g.abs().sum() for g in grads) > 0


@pytest.mark.parametrize("name", TINY)
def test_tiny_feature_taps_and_tokens(name):
    backbone = create_backbone(name).eval()
    x = tiny_input(backbone, 4)
    with torch.no_grad():
        taps = backbone.feature_taps(x)
        tokens = backbone.forward_tokens(x)
        feats = backbone.forward_features(x)
        one = backbone.feature_taps(x, [backbone.tap_names[0]])
    assert list(taps) == list(backbone.tap_names) and len(taps) >= 2
    assert list(one) == [backbone.tap_names[0]]
    assert all(v.shape[0] == 2 for v in taps.values())
    assert tokens.shape[0] == 2 and backbone.num_features in tokens.shape[1:]
    if backbone.library_format != "transformers" or getattr(backbone, "has_cls", True) is False:
        assert torch.allclose(backbone.pool(tokens), feats, atol=1e-5)  # features = pooled tokens


@pytest.mark.parametrize("name", TINY)
def test_tiny_in_channels(name):
    backbone = create_backbone(name, in_channels=2)
    x = tiny_input(backbone, 4)
    x = x[:, :1].repeat(1, 2, *[1] * (x.dim() - 2))
    assert backbone(x).shape == (2, backbone.num_features)


@pytest.mark.parametrize("name", TINY)
def test_tiny_bf16_autocast(name):
    backbone = create_backbone(name)
    x = tiny_input(backbone, 4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        feats = backbone(x)
    feats.float().square().mean().backward()
    assert feats.shape == (2, backbone.num_features) and torch.isfinite(feats).all()


@pytest.mark.parametrize("name", BIG)
def test_big_models_count_parameters_on_meta(name):
    assert count_parameters(name) > 1_000_000  # built on the meta device (cached for describe_backbones)


def test_describe_backbones_rows():
    rows = {row["name"]: row for row in describe_backbones()}
    assert list(rows) == list(BACKBONES)
    tiny = create_backbone("tiny_r3d")
    assert rows["tiny_r3d"]["params"] == sum(p.numel() for p in tiny.parameters())
    assert 11_000_000 < rows["resnet18"]["params"] < 11_300_000  # torchvision ResNet-18 minus fc
    assert all(row["input"] and row["description"] for row in rows.values())


SLOW_INPUTS = {"mvit_v2_s": (16, 224), "slowfast_r50": (8, 64), "vivit_b16x2": (4, 64),
               "videomae_vit_s16": (4, 64), "videomae_vit_b16": (4, 64), "timesformer_b16": (2, 64),
               "dpc_aggregate": (40, 64)}  # 8 blocks x 5 frames, as DPC's fine-tuning


@pytest.mark.slow
@pytest.mark.parametrize("name", BIG)
def test_big_forward_backward(name):
    backbone = create_backbone(name)
    t, size = SLOW_INPUTS.get(name, (8, 64))
    x = tiny_input(backbone, t, size=size, batch=1 if name == "mvit_v2_s" else 2)
    feats = backbone(x)
    assert feats.shape == (x.shape[0], backbone.num_features)
    feats.mean().backward()
    taps = backbone.feature_taps(x)
    assert set(taps) == set(backbone.tap_names)
