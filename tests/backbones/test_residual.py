"""Residual-frame input (Tao et al. 2020): the wrapped backbone sees x[t+1] - x[t], also after encoder.pt."""
import pytest
import torch

from videossl.backbones import create_backbone, load_encoder, save_encoder
from videossl.backbones.residual import residual_frames
from videossl.errors import UserError


def test_residual_frames_values_and_shape():
    x = torch.arange(2 * 3 * 4 * 2 * 2, dtype=torch.float32).view(2, 3, 4, 2, 2) ** 2
    r = residual_frames(x)
    assert r.shape == x.shape
    assert torch.equal(r[:, :, :3], x[:, :, 1:] - x[:, :, :-1])
    assert torch.equal(r[:, :, 3], r[:, :, 2])
    assert torch.equal(residual_frames(x[:, :, :1]), torch.zeros_like(x[:, :, :1]))


def test_static_appearance_cancels_and_encoder_roundtrip(tmp_path):
    torch.manual_seed(0)
    net = create_backbone("tiny_r3d", input_transform="residual").eval()
    clip = torch.randn(2, 3, 4, 32, 32)
    shifted = clip + torch.randn(2, 3, 1, 32, 32)  # a different static background, same motion
    with torch.no_grad():
        assert torch.allclose(net(clip), net(shifted), atol=1e-5)
        assert net.forward_tokens(clip).shape == (2, 128, 1, 2, 2)
    save_encoder(tmp_path / "encoder.pt", net, "tiny_r3d", {"input_transform": "residual"})
    again = load_encoder(tmp_path / "encoder.pt").eval()
    with torch.no_grad():
        assert torch.equal(again(clip), net(clip))


def test_unknown_input_transform_is_a_user_error():
    with pytest.raises(UserError, match="input_transform 'flow'"):
        create_backbone("tiny_r3d", input_transform="flow")


def test_wrapped_vit_keeps_its_attributes_and_mae_reconstructs_residuals():
    from videossl.config import load_pretrain_config
    from videossl.methods import METHODS

    torch.manual_seed(0)
    cfg = load_pretrain_config(None, ["method.name=mae", "backbone.name=tiny_videomae",
                                      "backbone.kwargs.input_transform=residual", "data.num_frames=4",
                                      "data.crop_size=32"])
    method = METHODS["mae"](cfg)
    assert method.backbone.patch_size == 8 and method.backbone.tubelet_size == 2  # seen through the wrapper
    clip = torch.randn(2, 3, 4, 32, 32)
    assert torch.equal(method.backbone.transform_input(clip), residual_frames(clip))
    from videossl.methods.base import StepInfo

    out = method.training_step({"video": [clip]}, StepInfo(step=0, total_steps=1, epoch=0))
    assert torch.isfinite(out["loss"])
