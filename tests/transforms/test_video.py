"""Video augmentation: one draw per clip, correct shapes/normalisation, crop positions, tube masks, batched mode."""
import pytest
import torch

from videossl.transforms.video import (VIDEO_MEAN, VIDEO_STD, BatchedVideoAugment, SpatialCrop, blur_kernel_size,
                                       build_multicrop_transforms, build_test_transforms, build_video_transform,
                                       three_crop, tube_mask)


def still_clip(t=4, h=40, w=48, seed=0):
    """uint8 (T, H, W, C): the same random frame T times."""
    frame = torch.randint(0, 256, (1, h, w, 3), dtype=torch.uint8, generator=torch.Generator().manual_seed(seed))
    return frame.expand(t, -1, -1, -1).contiguous()


@pytest.mark.parametrize("kind", ["ssl", "finetune", "eval", "crop"])
def test_one_random_draw_per_clip(kind):
    transform = build_video_transform(kind, 24, blur_p=0.5, solarize_p=0.5)
    for seed in range(4):
        torch.manual_seed(seed)
        out = transform(still_clip())
        assert out.shape == (3, 4, 24, 24) and out.dtype == torch.float32
        for t in range(1, 4):  # identical input frames stay identical: crop/flip/jitter shared by all frames
            assert torch.equal(out[:, t], out[:, 0])


def test_ssl_draws_differ_between_clips_and_repeat_with_seed():
    transform = build_video_transform("ssl", 24)
    torch.manual_seed(0)
    a = transform(still_clip())
    b = transform(still_clip())
    torch.manual_seed(0)
    assert torch.equal(transform(still_clip()), a) and not torch.equal(a, b)


def test_eval_normalises_and_centre_crops():
    frames = torch.full((2, 30, 40, 3), round(0.45 * 255), dtype=torch.uint8)
    out = build_video_transform("eval", 16)(frames)
    assert out.shape == (3, 2, 16, 16) and out.abs().max() < 0.02  # (x - mean) / std ~ 0
    white = build_video_transform("eval", 16, mean=VIDEO_MEAN, std=VIDEO_STD)(torch.full((1, 16, 16, 3), 255, dtype=torch.uint8))
    assert torch.allclose(white, torch.full_like(white, (1 - 0.45) / 0.225), atol=1e-5)


def test_colour_options_do_what_they_say():
    clip = torch.full((2, 16, 16, 3), 204, dtype=torch.uint8)  # 0.8 grey
    clip[..., 0] = 50  # not grey: red channel low
    gray = build_video_transform("ssl", 16, scale=(1.0, 1.0), jitter_p=0.0, gray_p=1.0, blur_p=0.0, normalize=False)(clip)
    assert torch.allclose(gray[0], gray[1]) and torch.allclose(gray[1], gray[2])
    sol = build_video_transform("ssl", 16, scale=(1.0, 1.0), jitter_p=0.0, gray_p=0.0, blur_p=0.0, solarize_p=1.0,
                                normalize=False)(clip)
    assert torch.allclose(sol[1], torch.full_like(sol[1], 1 - 0.8), atol=1e-3)  # above 0.5: inverted
    assert torch.allclose(sol[0], torch.full_like(sol[0], 50 / 255), atol=1e-3)  # below 0.5: kept
    assert blur_kernel_size(224) == 23 and blur_kernel_size(16) == 3


def test_spatial_crop_positions_and_test_transforms():
    frames = torch.zeros(2, 16, 48, 3, dtype=torch.uint8)
    frames[:, :, 32:] = 255  # right third white
    left, centre, right = (SpatialCrop(16, p)(frames.permute(0, 3, 1, 2)) for p in ("first", "center", "last"))
    assert left.max() == 0 and right.min() == 255 and centre.float().mean() < 255
    tall = torch.zeros(1, 3, 48, 16)
    tall[..., 32:, :] = 1.0
    top, _, bottom = three_crop(tall, 16)
    assert top.max() == 0 and bottom.min() == 1
    crops = build_test_transforms(16, 3)
    assert sorted(crops) == ["crop0", "crop1", "crop2"]
    assert crops["crop0"](frames).max() < crops["crop2"](frames).min()
    with pytest.raises(ValueError, match="num_crops"):
        build_test_transforms(16, 2)


def test_multicrop_sizes():
    crops = build_multicrop_transforms(global_size=32, local_size=12)
    assert crops["global"](still_clip()).shape == (3, 4, 32, 32)
    assert crops["local"](still_clip()).shape == (3, 4, 12, 12)


def test_tube_mask_is_a_tube_with_exact_ratio():
    mask = tube_mask(4, 7, 7, mask_ratio=0.9, generator=torch.Generator().manual_seed(0))
    assert mask.shape == (4, 7, 7) and mask.dtype == torch.bool
    assert int(mask[0].sum()) == round(0.9 * 49)
    assert all(torch.equal(mask[t], mask[0]) for t in range(4))
    other = tube_mask(4, 7, 7, mask_ratio=0.9, generator=torch.Generator().manual_seed(1))
    assert not torch.equal(mask, other)
    with pytest.raises(ValueError, match="mask_ratio"):
        tube_mask(1, 2, 2, mask_ratio=1.0)


def test_batched_augment_per_sample_draws_on_a_batch():
    clip = still_clip(t=3, h=32, w=32).permute(3, 0, 1, 2).float() / 255  # (C, T, H, W)
    batch = torch.stack([clip, clip])
    torch.manual_seed(0)
    out = BatchedVideoAugment(crop_size=16, jitter_p=1.0)(batch)
    assert out.shape == (2, 3, 3, 16, 16)
    assert not torch.allclose(out[0], out[1])  # independent draws per sample
    assert torch.equal(out[0, :, 0], out[0, :, 2])  # one draw per clip
    colour_only = BatchedVideoAugment(crop_size=None, jitter_p=0.0, gray_p=0.0, blur_p=0.0)(batch)
    assert torch.allclose(colour_only, (batch - 0.45) / 0.225, atol=1e-6)
    with pytest.raises(ValueError, match=r"\(B, C, T, H, W\)"):
        BatchedVideoAugment()(clip)
