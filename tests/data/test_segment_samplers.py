"""The samplers of the SSv2 / V-JEPA protocols: one random clip per equal part of the video (attentive probe), TSN
segments (VideoMAE's SSv2 fine-tuning) and their test views."""
import numpy as np

from videossl.data import sampling as S
from videossl.data import sampling_segments as G

LONG = S.VideoMeta(num_frames=300, fps=30.0, duration=10.0, height=32, width=32, has_audio=False)
SHORT = S.VideoMeta(num_frames=20, fps=30.0, duration=20 / 30, height=32, width=32, has_audio=False)


def test_partition_clips_fall_in_their_part_and_move_with_the_seed():
    sampler = G.PartitionClipSampler(num_clips=3, num_frames=4, stride=5)  # span 16 frames, parts of 100
    draws = [sampler(LONG, np.random.default_rng(seed)).views for seed in range(20)]
    for views in draws:
        assert [v.name for v in views] == ["clip0", "clip1", "clip2"]
        for i, view in enumerate(views):
            idx = view.frame_indices
            assert 100 * i <= idx[0] and idx[-1] < 100 * (i + 1) and np.all(np.diff(idx) == 5)
    assert len({views[1].frame_indices[0] for views in draws}) > 5  # random inside the part


def test_partition_clips_on_a_short_video_overlap_evenly():
    views = G.PartitionClipSampler(num_clips=3, num_frames=4, stride=2)(SHORT, np.random.default_rng(0)).views
    starts = [v.frame_indices[0] for v in views]  # span 7 > part 6: evenly spaced over the 13 frames of room
    assert starts == [0, 6, 13] and views[-1].frame_indices[-1] == 19


def test_tsn_frames_one_per_segment():
    sampler = G.SegmentFrameSampler(num_segments=10)
    for seed in range(10):
        (view,) = sampler(LONG, np.random.default_rng(seed)).views
        idx = np.array(view.frame_indices)
        assert len(idx) == 10 and np.all(idx // 30 == np.arange(10))  # frame i inside segment i (30 frames each)
    short = G.SegmentFrameSampler(num_segments=30)(SHORT, np.random.default_rng(0)).views[0].frame_indices
    assert len(short) == 30 and max(short) <= 19 and list(short) == sorted(short)


def test_tsn_test_views_are_the_segment_starts_and_midpoints():
    views = G.SegmentTestSampler(num_clips=2, num_segments=10, num_crops=3)(LONG, np.random.default_rng(0)).views
    assert [v.name for v in views[:4]] == ["clip0_crop0", "clip0_crop1", "clip0_crop2", "clip1_crop0"]
    assert [v.transform for v in views[:3]] == ["crop0", "crop1", "crop2"]
    # MCG-NJU/VideoMAE ssv2.py (test): int(tick * x) for chunk 0, int(tick / 2 + tick * x) for chunk 1
    assert list(views[0].frame_indices) == [30 * x for x in range(10)]
    assert list(views[3].frame_indices) == [15 + 30 * x for x in range(10)]
