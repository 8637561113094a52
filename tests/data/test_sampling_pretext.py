"""Candidate samplers of the pretext tasks and the black-border crop."""
import numpy as np
import torch

from videossl.data.sampling import VideoMeta
from videossl.data.sampling_pretext import (ArrowOfTimeCandidatesSampler, CropBlackBorders,
                                            ShuffleAndLearnCandidatesSampler, black_border_box)

META = VideoMeta(num_frames=64, fps=16.0, duration=4.0, height=32, width=32, has_audio=False)


def test_shuffle_and_learn_candidates_are_ordered_windows():
    sampled = ShuffleAndLearnCandidatesSampler(num_candidates=3, window_frames=20)(META, np.random.default_rng(0))
    assert len(sampled.views) == 3 and set(sampled.targets) == {"order_label", "negative_side"}
    for view in sampled.views:
        idx = view.frame_indices
        assert len(idx) == 5 and list(idx) == sorted(idx) and idx[-1] - idx[0] < 20 and view.transform == "tuple"


def test_shuffle_and_learn_candidate_snippets_are_element_major():
    sampler = ShuffleAndLearnCandidatesSampler(num_candidates=2, window_frames=20, snippet_frames=3, snippet_stride=2)
    for seed in range(10):
        for view in sampler(META, np.random.default_rng(seed)).views:
            elements = np.asarray(view.frame_indices).reshape(5, 3)
            starts = elements[:, 0]
            assert list(starts) == sorted(starts) and starts[-1] - starts[0] < 20
            # each element is its own snippet (past the end of the video its last frame repeats)
            expected = np.minimum(starts[:, None] + 2 * np.arange(3), META.num_frames - 1)
            assert (elements == expected).all()


def test_arrow_candidates_are_all_forward_or_all_reversed():
    sampler = ArrowOfTimeCandidatesSampler(num_candidates=2, num_frames=6, stride=2)
    seen = set()
    for seed in range(10):
        sampled = sampler(META, np.random.default_rng(seed))
        label = sampled.targets["order_label"]
        seen.add(label)
        for view in sampled.views:
            diffs = np.diff(view.frame_indices)
            assert (diffs == (-2 if label else 2)).all()
    assert seen == {0, 1}


def test_black_borders_are_cut_before_the_transform():
    frames = torch.full((3, 20, 30, 3), 120, dtype=torch.uint8)
    frames[:, :3] = 0  # letterbox top and bottom
    frames[:, -3:] = 0
    frames[:, :, :2] = 5  # pillarbox left, nearly black
    assert black_border_box(frames) == (3, 17, 2, 30)
    seen = []
    CropBlackBorders(lambda f: seen.append(tuple(f.shape)) or torch.zeros(1))(frames)
    assert seen == [(3, 14, 28, 3)]


def test_dark_clips_are_not_cropped_away():
    frames = torch.zeros(2, 20, 20, 3, dtype=torch.uint8)  # all black: keep everything
    assert black_border_box(frames) == (0, 20, 0, 20)
    frames[:, 15:] = 200  # only the bottom is bright: at most a quarter is cut from the top
    top, bottom, _, _ = black_border_box(frames)
    assert top == 5 and bottom == 20
