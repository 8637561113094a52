"""MAE targets and loss: patch order matches the ViT's patch embedding, normalised pixels, masked-only MSE."""
import torch

from videossl.losses.mae import masked_reconstruction_loss, patchify, pixel_targets


def test_patchify_order_matches_conv3d_patch_embedding():
    # A Conv3d with kernel = stride = (tubelet, p, p) that reads one pixel per output channel sees exactly
    # the pixels patchify puts in that token: compare token contents through a one-hot kernel.
    video = torch.randn(2, 3, 4, 8, 8)
    patches = patchify(video, 2, 4)  # (B, N=2*2*2, 2*4*4, 3)
    conv = torch.nn.Conv3d(3, 2 * 4 * 4 * 3, (2, 4, 4), stride=(2, 4, 4), bias=False)
    with torch.no_grad():
        conv.weight.zero_()
        for idx in range(2 * 4 * 4 * 3):
            pix, c = divmod(idx, 3)
            t, rest = divmod(pix, 16)
            y, x = divmod(rest, 4)
            conv.weight[idx, c, t, y, x] = 1.0
        tokens = conv(video).flatten(2).transpose(1, 2)  # (B, N, P*C), the backbone's token order
    assert torch.allclose(tokens, patches.flatten(2), atol=1e-6)


def test_pixel_targets_normalise_each_channel_of_each_patch():
    patches = torch.randn(2, 5, 16, 3) * 4 + 7
    target = pixel_targets(patches).view(2, 5, 16, 3)
    assert torch.allclose(target.mean(dim=2), torch.zeros(2, 5, 3), atol=1e-5)
    assert torch.allclose(target.std(dim=2), torch.ones(2, 5, 3), atol=1e-4)
    assert torch.equal(pixel_targets(patches, normalize=False), patches.flatten(2))


def test_loss_counts_masked_patches_only():
    target = torch.zeros(1, 4, 2)
    prediction = torch.tensor([[[1.0, 1.0], [2.0, 2.0], [5.0, 5.0], [9.0, 9.0]]])
    mask = torch.tensor([[True, True, False, False]])
    assert abs(masked_reconstruction_loss(prediction, target, mask).item() - (1 + 4) / 2) < 1e-6
