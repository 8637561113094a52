"""Weights in from local files and out to library formats: round trips on random weights give the same
outputs; bad paths and mismatched checkpoints give one clear error."""
import pytest
import torch

from videossl.backbones import create_backbone, load_encoder, save_encoder
from videossl.backbones.export import export_encoder, export_torchvision
from videossl.backbones.weights import WeightsError
from videossl.errors import UserError


def _randomize_bn(backbone):
    """Non-trivial BatchNorm statistics so eval outputs depend on every buffer."""
    for m in backbone.modules():
        if isinstance(m, torch.nn.modules.batchnorm._BatchNorm):
            m.running_mean.uniform_(-0.5, 0.5)
            m.running_var.uniform_(0.5, 1.5)
    return backbone.eval()


def test_torchvision_round_trip_into_torchvision_model(tmp_path):
    import torchvision

    ours = _randomize_bn(create_backbone("r3d_18"))
    save_encoder(tmp_path / "encoder.pt", ours, "r3d_18", {})
    out = export_encoder(tmp_path / "encoder.pt", "torchvision", tmp_path / "r3d.pth")
    theirs = torchvision.models.video.r3d_18(weights=None)
    result = theirs.load_state_dict(torch.load(out, weights_only=True), strict=False)
    assert set(result.missing_keys) == {"fc.weight", "fc.bias"} and not result.unexpected_keys
    theirs.fc = torch.nn.Identity()
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        torch.testing.assert_close(ours(x), theirs.eval()(x))
    # and back into a fresh backbone through ``pretrained``
    again = create_backbone("r3d_18", pretrained=str(out)).eval()
    with torch.no_grad():
        torch.testing.assert_close(again(x), ours(x))


def test_pytorchvideo_round_trip(tmp_path):
    from pytorchvideo.models.hub import x3d_xs

    ours = _randomize_bn(create_backbone("x3d_xs"))
    save_encoder(tmp_path / "encoder.pt", ours, "x3d_xs", {})
    out = export_encoder(tmp_path / "encoder.pt", "pytorchvideo", tmp_path / "x3d.pyth")
    theirs = x3d_xs(pretrained=False)
    result = theirs.load_state_dict(torch.load(out, weights_only=True)["model_state"], strict=False)
    assert all(k.startswith("blocks.5.") for k in result.missing_keys) and not result.unexpected_keys
    x = torch.randn(1, 3, 4, 32, 32)
    with torch.no_grad():
        y = x
        for block in theirs.eval().blocks[:5]:
            y = block(y)
        pool = theirs.blocks[5].pool
        y = pool.pre_act(pool.pre_norm(pool.pre_conv(y)))
        torch.testing.assert_close(ours.forward_tokens(x), y)
        again = create_backbone("x3d_xs", pretrained=str(out)).eval()
        torch.testing.assert_close(again(x), ours(x))


@pytest.mark.parametrize("name", ["tiny_videomae", "tiny_timesformer", "tiny_vit2d"])
def test_transformers_round_trip(tmp_path, name):
    ours = create_backbone(name).eval()
    save_encoder(tmp_path / "encoder.pt", ours, name, {})
    out = export_encoder(tmp_path / "encoder.pt", "transformers", tmp_path / "hf")
    assert (out / "config.json").is_file()
    theirs = type(ours.model).from_pretrained(str(out)).eval()
    x = torch.randn(1, 3, {"tiny_videomae": 8, "tiny_timesformer": 4, "tiny_vit2d": 1}[name], 32, 32)
    with torch.no_grad():
        pixel = x[:, :, 0] if name == "tiny_vit2d" else x.transpose(1, 2)
        torch.testing.assert_close(
            theirs(pixel_values=pixel).last_hidden_state, ours.model(pixel_values=pixel).last_hidden_state
        )
        again = create_backbone(name, pretrained=str(out)).eval()
        torch.testing.assert_close(again(x), ours(x))


def test_encoder_pt_round_trip_and_pretrained(tmp_path):
    ours = create_backbone("tiny_r2d", in_channels=1).eval()
    save_encoder(tmp_path / "encoder.pt", ours, "tiny_r2d", {"in_channels": 1, "pretrained": "/gone/away.pt"})
    x = torch.randn(2, 1, 3, 32, 32)
    loaded = load_encoder(tmp_path / "encoder.pt").eval()  # the old ``pretrained`` path is not read again
    fresh = create_backbone("tiny_r2d", in_channels=1, pretrained=str(tmp_path / "encoder.pt")).eval()
    with torch.no_grad():
        torch.testing.assert_close(loaded(x), ours(x))
        torch.testing.assert_close(fresh(x), ours(x))


def test_rgb_weights_into_flow_backbone(tmp_path):
    """in_channels=2 from an RGB checkpoint: first conv = RGB mean copied to both channels (TSN)."""
    rgb = create_backbone("tiny_r2d")
    export_torchvision(rgb, tmp_path / "rgb.pth")
    flow = create_backbone("tiny_r2d", in_channels=2, pretrained=str(tmp_path / "rgb.pth"))
    expected = rgb.model.conv1.weight.mean(dim=1, keepdim=True).expand(-1, 2, -1, -1)
    torch.testing.assert_close(flow.model.conv1.weight, expected)
    torch.testing.assert_close(flow.model.layer4[1].conv2.weight, rgb.model.layer4[1].conv2.weight)


def test_missing_path_names_it():
    with pytest.raises(UserError, match="/no/such/weights.pth"):
        create_backbone("tiny_r2d", pretrained="/no/such/weights.pth")


def test_wrong_checkpoint_names_the_key(tmp_path):
    export_torchvision(create_backbone("resnet18"), tmp_path / "r18.pth")
    with pytest.raises(WeightsError, match=r"r18.pth: 'model.conv1.weight' has shape \(64, 3, 7, 7\)"):
        create_backbone("tiny_r2d", pretrained=str(tmp_path / "r18.pth"))
    torch.save({"fc.weight": torch.zeros(2, 2)}, tmp_path / "head_only.pth")
    with pytest.raises(WeightsError, match="missing keys: model.conv1.weight"):
        create_backbone("tiny_r2d", pretrained=str(tmp_path / "head_only.pth"))
    (tmp_path / "junk.pth").write_text("not a checkpoint")
    with pytest.raises(WeightsError, match="junk.pth: not a readable PyTorch checkpoint"):
        create_backbone("tiny_r2d", pretrained=str(tmp_path / "junk.pth"))


def test_export_to_the_wrong_library_is_a_user_error(tmp_path):
    save_encoder(tmp_path / "encoder.pt", create_backbone("tiny_r3d"), "tiny_r3d", {})
    with pytest.raises(UserError, match="exports to library format none"):
        export_encoder(tmp_path / "encoder.pt", "torchvision", tmp_path / "x.pth")


def test_export_tool_main(tmp_path, capsys):
    import importlib.util
    from pathlib import Path

    tool = Path(__file__).resolve().parents[2] / "tools" / "export_encoder.py"
    spec = importlib.util.spec_from_file_location("export_encoder_tool", tool)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    save_encoder(tmp_path / "encoder.pt", create_backbone("tiny_audio_resnet"), "tiny_audio_resnet", {})
    assert module.main([str(tmp_path / "encoder.pt"), "--to", "torchvision", str(tmp_path / "a.pth")]) == 0
    assert (tmp_path / "a.pth").is_file()
    assert module.main([str(tmp_path / "nothing.pt"), "--to", "torchvision", str(tmp_path / "b.pth")]) == 2
    assert "encoder file not found" in capsys.readouterr().err
