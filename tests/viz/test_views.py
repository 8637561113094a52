"""`videossl show views`: the recorded views are what the dataset returned, un-normalising is exact,
DPC blocks are split, and the command writes a PNG and a GIF."""

import numpy as np
import pytest
import torch

from videossl import recipes_dir
from videossl.config import load_pretrain_config
from videossl.data.sampling import VideoMeta, ViewRequest, frames_to_time
from videossl.transforms.video import VIDEO_MEAN, VIDEO_STD, build_video_transform
from videossl.viz.render import clip_to_frames, find_normalization, format_indices, pick_columns
from videossl.viz.views import ShownSample, ShownView, draw_views_png, sample_views, split_blocks

RECIPES = recipes_dir()


def test_find_normalization_and_exact_unnormalise():
    transform = build_video_transform("ssl", 32)
    assert find_normalization(transform) == (list(VIDEO_MEAN), list(VIDEO_STD))
    assert find_normalization(build_video_transform("crop", 32)) is None
    frames = torch.randint(0, 256, (3, 16, 16, 3), dtype=torch.uint8)
    clip = (frames.permute(3, 0, 1, 2).float() / 255 - VIDEO_MEAN[0]) / VIDEO_STD[0]  # (C, T, H, W) normalised
    shown = clip_to_frames(clip, (VIDEO_MEAN, VIDEO_STD))
    assert shown.shape == (3, 16, 16, 3) and shown.dtype == np.uint8
    assert np.abs(shown.astype(int) - frames.numpy().astype(int)).max() <= 1


def test_index_helpers():
    assert format_indices(range(4)) == "0,1,2,3"
    assert format_indices(range(0, 40, 2), limit=6) == "0,2,4,6,...,38"
    assert pick_columns(3, 8) == [0, 1, 2]
    assert pick_columns(16, 4) == [0, 5, 10, 15]


def test_sample_views_records_what_the_dataset_returned(tiny_pool, tiny_overrides, tmp_path):
    cfg = load_pretrain_config(RECIPES / "dino_synthetic_tiny3d.yaml",
                               tiny_overrides(tiny_pool, tmp_path, frames=4, extra=["data.frame_stride=2"]))
    samples, spec = sample_views(cfg, num_videos=2, seed=3)
    assert len(samples) == 2 and samples[0].index != samples[1].index
    s = samples[0]
    expected = cfg.method.num_global + cfg.method.num_local
    assert [v.request.name for v in s.views] == [f"clip{k}" for k in range(expected)]
    for v in s.views:
        c, t, h, w = v.data.shape
        assert t == len(v.request.frame_indices) == 4
        assert np.all(np.diff(v.request.frame_indices) == 2)  # data.frame_stride
        assert h == (32 if v.request.transform == "global" else 16)  # DINO's local crop is smaller
        assert v.span_s == frames_to_time(s.meta, v.request.frame_indices)
    # the same draw as training: dataset[(index, epoch)] is a pure function of (seed, epoch, index)
    again, _ = sample_views(cfg, num_videos=2, seed=3)
    assert torch.equal(again[0].views[0].data, s.views[0].data)
    other, _ = sample_views(cfg, num_videos=2, seed=4)
    assert not torch.equal(other[0].views[0].data, s.views[0].data)


def _fake_sample(views, targets):
    meta = VideoMeta(num_frames=32, fps=8.0, duration=4.0, height=32, width=32, has_audio=True)
    return ShownSample(0, "/x/a.mp4", "bounce", meta, views, targets)


def test_split_blocks_cuts_dpc_views_into_blocks():
    indices = tuple(range(0, 24, 3))  # 2 blocks x 4 frames, stride 3
    data = torch.arange(8.0).view(1, 8, 1, 1).expand(3, 8, 4, 4)
    view = ShownView(ViewRequest("blocks", "video", indices, None, "blocks"), data, (0.0, 3.0))
    (s,) = split_blocks([_fake_sample([view], {"num_blocks": 2})])
    assert [v.request.name for v in s.views] == ["blocks[0]", "blocks[1]"]
    assert s.views[1].request.frame_indices == indices[4:]
    assert torch.equal(s.views[1].data[0, :, 0, 0], torch.tensor([4.0, 5, 6, 7]))
    assert s.views[1].span_s == (12 / 8, 22 / 8)


def test_png_draws_audio_views_as_spectrograms(tmp_path):
    from videossl.data.sampling import ViewSpec

    clip = torch.rand(3, 4, 16, 16)
    wave = torch.sin(torch.linspace(0, 2000, 8000)).view(1, -1)
    views = [ShownView(ViewRequest("clip0", "video", (0, 2, 4, 6), None, "clip"), clip, (0.0, 0.875)),
             ShownView(ViewRequest("audio0", "audio", None, (0.0, 0.5), "audio"), wave, (0.0, 0.5))]
    spec = ViewSpec(sampler=None, transforms={"clip": build_video_transform("crop", 16)}, audio_rate=16000)
    path = draw_views_png([_fake_sample(views, {"order_label": 1})], spec, tmp_path / "v.png", max_frames=4)
    from PIL import Image

    image = np.asarray(Image.open(path).convert("RGB"))
    assert image.shape[0] > 100 and image.std() > 10


def test_show_views_command_writes_png_and_gif(tiny_pool, tiny_overrides, tmp_path):
    from PIL import Image

    from videossl.cli import main

    overrides = tiny_overrides(tiny_pool, tmp_path / "run", frames=4)
    code = main(["show", "views", str(RECIPES / "simclr_synthetic_tiny3d.yaml"), *overrides, "--videos", "2",
                 "--out", str(tmp_path / "out" / "simclr.png")])
    assert code == 0
    assert Image.open(tmp_path / "out" / "simclr.png").size[0] > 300
    gif = Image.open(tmp_path / "out" / "simclr.gif")
    assert gif.n_frames == 4  # one step per frame of the longest view


def test_bad_index_is_a_user_error(tiny_pool, tiny_overrides, tmp_path):
    from videossl.errors import UserError

    cfg = load_pretrain_config(RECIPES / "simclr_synthetic_tiny3d.yaml", tiny_overrides(tiny_pool, tmp_path))
    with pytest.raises(UserError, match="--index 999"):
        sample_views(cfg, indices=[999])
