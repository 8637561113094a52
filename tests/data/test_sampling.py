"""Clip samplers: indices stay in the annotated segment, labels match the order of the frames, seeds repeat."""
import numpy as np
import pytest

from videossl.data import sampling as S
from videossl.data import sampling_pretext as P
from videossl.data import sampling_segments as G

LONG = S.VideoMeta(num_frames=300, fps=30.0, duration=10.0, height=32, width=32, has_audio=True)
SHORT = S.VideoMeta(num_frames=7, fps=30.0, duration=7 / 30, height=32, width=32, has_audio=True)
ONE = S.VideoMeta(num_frames=1, fps=30.0, duration=1 / 30, height=32, width=32, has_audio=False)
SEGMENT = LONG._replace(start=2.0, end=4.0)  # frames [60, 120)

ALL_SAMPLERS = [
    S.RandomClipSampler(num_frames=8, stride=4),
    S.UniformClipSampler(num_frames=8),
    S.MultiClipTestSampler(num_clips=4, num_frames=8, stride=4, num_crops=3),
    G.PartitionClipSampler(num_clips=3, num_frames=8, stride=4),
    G.SegmentFrameSampler(num_segments=8),
    G.SegmentTestSampler(num_clips=2, num_segments=8, num_crops=3),
    S.RhoClipSampler(rho=3, num_frames=8, stride=8),
    S.RhoClipSampler(rho=2, num_frames=4, stride=2, max_distance_s=1.0),
    S.FrameSampler(num_views=2),
    S.SVTSampler(),
    S.BraVeSampler(broad_audio=True),
    S.ContiguousBlockSampler(num_blocks=4, block_frames=5, stride=3),
    S.LongAudioSampler(seconds=2.0),
    S.AudioVisualSampler(hard_negative=True),
    P.ShuffleAndLearnSampler(),
    P.OPNSampler(),
    P.OPNSampler(snippet_frames=4, snippet_stride=2),
    P.VCOPSampler(),
    P.ArrowOfTimeSampler(),
    P.PlaybackSpeedSampler(),
]


def _video(out, name=None):
    return [v for v in out.views if v.modality == "video" and (name is None or v.name == name)]


@pytest.mark.parametrize("sampler", ALL_SAMPLERS, ids=lambda s: type(s).__name__)
@pytest.mark.parametrize("meta", [LONG, SHORT, ONE, SEGMENT], ids=["long", "short", "one_frame", "segment"])
def test_indices_inside_segment_and_seeded(sampler, meta):
    first, stop = S.segment_frames(meta)
    for seed in range(5):
        out = sampler(meta, np.random.default_rng(seed))
        again = sampler(meta, np.random.default_rng(seed))
        assert out == again, "same rng seed must give the same views"
        assert len({v.name for v in out.views}) == len(out.views), "view names are unique"
        for view in out.views:
            if view.modality == "video":
                assert view.frame_indices and all(first <= i < stop for i in view.frame_indices), view
            else:
                start, end = view.time_range
                assert end > start >= 0.0


def test_short_video_pads_by_repeating_last_frame():
    out = S.RandomClipSampler(num_frames=8, stride=2)(SHORT, np.random.default_rng(0))
    assert out.views[0].frame_indices == (0, 2, 4, 6, 6, 6, 6, 6)
    one = S.RandomClipSampler(num_frames=4, stride=4)(ONE, np.random.default_rng(0))
    assert one.views[0].frame_indices == (0, 0, 0, 0)


def test_random_clip_covers_the_video_and_respects_the_segment():
    starts = {S.RandomClipSampler(8, 4)(SEGMENT, np.random.default_rng(s)).views[0].frame_indices[0] for s in range(200)}
    span = S.clip_span(8, 4)
    assert min(starts) == 60 and max(starts) == 120 - span  # both ends of [60, 120 - span] are reached


def test_multiclip_test_sampler_is_even_and_names_crops():
    out = S.MultiClipTestSampler(num_clips=3, num_frames=4, stride=1, num_crops=3)(LONG, np.random.default_rng(0))
    assert [v.transform for v in out.views[:3]] == ["crop0", "crop1", "crop2"]
    starts = [v.frame_indices[0] for v in out.views[::3]]
    assert starts == [0, 148, 296]  # first, middle and last possible clip


def test_rho_clips_are_at_different_times_and_within_max_distance():
    out = S.RhoClipSampler(rho=4, num_frames=8, stride=8)(LONG, np.random.default_rng(1))
    assert len({v.frame_indices[0] for v in out.views}) == 4
    for seed in range(50):
        near = S.RhoClipSampler(rho=2, num_frames=4, stride=2, max_distance_s=1.0)(LONG, np.random.default_rng(seed))
        a, b = (v.frame_indices[0] for v in near.views)
        assert abs(a - b) <= 30
    byol = S.RhoClipSampler(rho=2, transforms=("view0", "view1"))(LONG, np.random.default_rng(0))
    assert [v.transform for v in byol.views] == ["view0", "view1"]


def test_svt_global_and_local_views():
    out = S.SVTSampler(global_frames=(8, 8), global_strides=(2, 8), num_local=4, local_frames=(2, 4))(
        LONG, np.random.default_rng(0))
    g = [v for v in out.views if v.transform == "global"]
    loc = [v for v in out.views if v.transform == "local"]
    assert len(g) == 2 and len(loc) == 4
    spans = [v.frame_indices[-1] - v.frame_indices[0] for v in g]
    assert spans == [14, 56]  # different spans and frame rates
    assert [len(v.frame_indices) for v in loc] == [2, 4, 2, 4]  # fewer frames, fixed per position


def test_brave_narrow_inside_broad_and_audio_covers_broad():
    for seed in range(20):
        out = S.BraVeSampler(narrow_frames=8, narrow_stride=1, broad_frames=16, broad_stride=4,
                             broad_audio=True)(LONG, np.random.default_rng(seed))
        narrow, broad = _video(out, "narrow")[0].frame_indices, _video(out, "broad")[0].frame_indices
        assert np.all(np.diff(narrow) == 1) and np.all(np.diff(broad) == 4)
        assert broad[0] <= narrow[0] and narrow[-1] <= broad[-1]
        start, end = out.views[-1].time_range
        assert start == pytest.approx(broad[0] / 30) and end == pytest.approx((broad[0] + 61) / 30)


def test_dpc_blocks_are_contiguous():
    out = S.ContiguousBlockSampler(num_blocks=4, block_frames=5, stride=3)(LONG, np.random.default_rng(0))
    idx = out.views[0].frame_indices
    assert len(idx) == 20 and np.all(np.diff(idx) == 3) and out.targets == {"num_blocks": 4}


def test_shuffle_and_learn_labels_match_order():
    labels = set()
    for seed in range(40):
        out = P.ShuffleAndLearnSampler(window_frames=60)(LONG, np.random.default_rng(seed))
        frames = [v.frame_indices[0] for v in out.views]
        ordered = frames == sorted(frames)
        assert ordered == (out.targets["order_label"] == 1), frames
        labels.add(out.targets["order_label"])
        assert max(frames) - min(frames) < 60
    assert labels == {0, 1}


def test_opn_twelve_classes_reverse_shares_class():
    sampler = P.OPNSampler(window_frames=30)
    classes = P._order_classes(4)
    assert len(classes) == 12 and sampler.num_classes == 12
    seen = set()
    for seed in range(200):
        out = sampler(LONG, np.random.default_rng(seed))
        frames = [v.frame_indices[0] for v in out.views]
        ranks = tuple(int(r) for r in np.argsort(np.argsort(frames)))  # time rank of each view
        assert min(ranks, ranks[::-1]) == classes[out.targets["order_label"]]
        seen.add(out.targets["order_label"])
    assert seen == set(range(12))


def test_opn_snippets_start_at_the_ordered_frames():
    sampler = P.OPNSampler(window_frames=30, snippet_frames=3, snippet_stride=2)
    classes = P._order_classes(4)
    for seed in range(20):
        out = sampler(LONG, np.random.default_rng(seed))
        for v in out.views:
            assert len(v.frame_indices) == 3 and np.all(np.diff(v.frame_indices) == 2)
        starts = [v.frame_indices[0] for v in out.views]
        ranks = tuple(int(r) for r in np.argsort(np.argsort(starts)))
        assert min(ranks, ranks[::-1]) == classes[out.targets["order_label"]]


def test_vcop_unshuffles_to_consecutive_clips():
    sampler = P.VCOPSampler(clip_frames=4, interval=2)
    for seed in range(30):
        out = sampler(LONG, np.random.default_rng(seed))
        perm = sampler.permutations[out.targets["order_label"]]
        clips = [None] * 3
        for view, original in zip(out.views, perm):
            clips[original] = view.frame_indices
        assert [c[0] for c in clips] == [clips[0][0] + 6 * k for k in range(3)]


def test_arrow_of_time_and_playback_speed_labels():
    for seed in range(20):
        out = P.ArrowOfTimeSampler(num_frames=4, stride=2)(LONG, np.random.default_rng(seed))
        steps = np.diff(out.views[0].frame_indices)
        assert np.all(steps == (-2 if out.targets["order_label"] else 2))
        sp = P.PlaybackSpeedSampler(num_frames=4, stride=1, speeds=(1, 2, 4, 8))(LONG, np.random.default_rng(seed))
        assert np.all(np.diff(sp.views[0].frame_indices) == (1, 2, 4, 8)[sp.targets["speed_label"]])


def test_audio_visual_offset_and_hard_negative():
    for offset in (0.0, 0.5, -0.5):
        out = S.AudioVisualSampler(num_frames=8, stride=2, audio_seconds=1.0, audio_offset=offset,
                                   hard_negative=True, min_negative_gap_s=2.0)(LONG, np.random.default_rng(3))
        clip = out.views[0].frame_indices
        clip_center = (clip[0] + clip[-1] + 1) / 2 / 30
        a0, a1 = out.views[1].time_range
        assert a1 - a0 == pytest.approx(1.0)
        assert (a0 + a1) / 2 == pytest.approx(clip_center + offset)
        n0, n1 = out.views[2].time_range
        assert abs((n0 + n1) / 2 - clip_center) >= 2.0 - 1e-6 and out.targets["negative_gap_s"] >= 2.0


def test_hard_negative_keeps_its_gap_from_a_positive_clamped_at_the_file_ends():
    meta = S.VideoMeta(num_frames=90, fps=30.0, duration=3.0, height=32, width=32, has_audio=True)
    sampler = S.AudioVisualSampler(num_frames=8, stride=2, audio_seconds=1.0, hard_negative=True, min_negative_gap_s=1.0)
    clamped = 0
    for seed in range(200):
        out = sampler(meta, np.random.default_rng(seed))
        (a0, a1), (n0, n1) = out.views[1].time_range, out.views[2].time_range
        clip = out.views[0].frame_indices
        clamped += abs((clip[0] + clip[-1] + 1) / 2 / 30 - (a0 + a1) / 2) > 1e-6
        gap = abs((n0 + n1) / 2 - (a0 + a1) / 2)
        assert out.targets["negative_gap_s"] == pytest.approx(gap)
        if (a0 + a1) / 2 - 1.0 >= 0.5 or (a0 + a1) / 2 + 1.0 <= 2.5:  # a window 1 s away fits in the file
            assert gap >= 1.0 - 1e-6 and (n1 <= a0 + 1e-6 or n0 >= a1 - 1e-6)  # no shared sound
    assert clamped > 20  # clips near the ends, whose positive window was shifted inside the file, were drawn


def test_long_audio_window_and_frame_sampler():
    out = S.LongAudioSampler(seconds=2.0)(LONG, np.random.default_rng(0))
    start, end = out.views[0].time_range
    assert end - start == pytest.approx(2.0) and end <= 10.0
    frames = S.FrameSampler(num_views=2, same_frame=True)(LONG, np.random.default_rng(0))
    assert frames.views[0].frame_indices == frames.views[1].frame_indices
    assert len(frames.views[0].frame_indices) == 1


def test_bad_settings_raise_clear_error():
    with pytest.raises(ValueError, match="num_frames"):
        S.RandomClipSampler(num_frames=0)
