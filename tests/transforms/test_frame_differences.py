"""The one frame-difference transform (transforms/video.py), in its two lengths: T-1 (BraVe's broad view) and T
(the residual-input backbone, ELo's streams)."""
import torch

from videossl.backbones.residual import residual_frames
from videossl.transforms.video import frame_differences


def test_true_differences_drop_one_frame_and_leave_an_image_as_it_is():
    x = torch.randn(2, 3, 5, 4, 4)
    d = frame_differences(x)
    assert d.shape == (2, 3, 4, 4, 4)
    assert torch.equal(d, x[:, :, 1:] - x[:, :, :-1])
    assert torch.equal(frame_differences(x[:, :, :1]), x[:, :, :1])


def test_keep_length_repeats_the_last_difference_and_gives_zeros_for_an_image():
    x = torch.randn(2, 3, 5, 4, 4)
    d = frame_differences(x, keep_length=True)
    assert d.shape == x.shape
    assert torch.equal(d[:, :, :4], frame_differences(x))
    assert torch.equal(d[:, :, 4], d[:, :, 3])
    assert torch.equal(frame_differences(x[:, :, :1], keep_length=True), torch.zeros_like(x[:, :, :1]))
    assert torch.equal(residual_frames(x), d)
