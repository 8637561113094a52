"""The pretext tasks' labels and puzzles are what the papers define: permutation sets, tiles, triplets, rotations,
motion filters, colour targets, holes. Tiny tensors, no training (the smoke test trains each method)."""
import itertools

import numpy as np
import pytest
import torch

from videossl import recipes_dir
from videossl.config import load_pretrain_config
from videossl.errors import UserError
from videossl.heads import PairwiseFusionHead
from videossl.methods import METHODS
from videossl.transforms.motion import camera_only_motion, frame_motion
from videossl.transforms.puzzle import crop_tiles, gather_permuted, maximal_hamming_permutations, min_hamming_distance


def build(name, *extra, frames=4, crop=32):
    cfg = load_pretrain_config(None, [f"method.name={name}", f"data.num_frames={frames}", "data.frame_stride=1",
                                      f"data.crop_size={crop}", *extra])
    return METHODS[name](cfg)


# ---- permutation sets and pieces ---------------------------------------------------------------------------


def test_maximal_hamming_set_is_deterministic_unique_and_far_apart():
    perms = maximal_hamming_permutations(9, 100)
    assert len(set(perms)) == 100 and all(sorted(p) == list(range(9)) for p in perms)
    assert perms == maximal_hamming_permutations(9, 100)
    rng = np.random.default_rng(0)
    random_set = tuple(tuple(rng.permutation(9)) for _ in range(100))
    # The greedy maximal set is far better spread than random permutations (min distance 2-3 for those).
    assert min_hamming_distance(perms) >= 6 > min_hamming_distance(random_set)


def test_small_permutation_sets_are_all_permutations():
    assert sorted(maximal_hamming_permutations(4, 24)) == list(itertools.permutations(range(4)))


def test_crop_tiles_without_jitter_tile_the_image_and_gather_permutes():
    clip = torch.arange(2 * 1 * 1 * 6 * 6, dtype=torch.float).view(2, 1, 1, 6, 6)
    tiles = crop_tiles(clip, (3, 3), tile=2, jitter=False)  # (2, 9, 1, 1, 2, 2)
    assert torch.equal(tiles[0, 4, 0, 0], clip[0, 0, 0, 2:4, 2:4])  # centre cell
    assert torch.equal(tiles[1, 8, 0, 0], clip[1, 0, 0, 4:6, 4:6])
    perms = torch.tensor([list(range(9))[::-1], list(range(9))])
    shuffled = gather_permuted(tiles, perms)
    assert torch.equal(shuffled[0, 0], tiles[0, 8]) and torch.equal(shuffled[1], tiles[1])


def test_crop_tiles_refuses_tiles_larger_than_cells():
    with pytest.raises(UserError, match="larger than a grid cell"):
        crop_tiles(torch.zeros(1, 3, 1, 9, 9), (3, 3), tile=4)


def test_pairwise_fusion_head_uses_every_pair():
    head = PairwiseFusionHead(dim=5, num_elements=4, num_classes=12, pair_dim=7)
    assert len(head.pairs) == 6
    assert head(torch.randn(3, 4, 5)).shape == (3, 12)


# ---- motion measures --------------------------------------------------------------------------------------


def _texture(size=24, seed=0):
    return torch.from_numpy(np.random.default_rng(seed).random((size + 8, size + 8))).float()


def test_frame_motion_and_camera_only_motion():
    tex = _texture()
    static = tex[4:28, 4:28].expand(1, 3, 4, 24, 24).clone()
    pan = torch.stack([tex[4:28, 4 + t:28 + t] for t in range(4)]).expand(1, 3, 4, 24, 24).clone()
    obj = static.clone()
    for t in range(4):  # a bright square moving on the still background
        obj[..., t, 8:14, 2 + 3 * t:8 + 3 * t] = 3.0
    assert frame_motion(static).item() == 0.0
    assert frame_motion(pan).item() > 0.1 and frame_motion(obj).item() > 0.01
    flags = camera_only_motion(torch.cat([static, pan, obj]))
    assert flags.tolist() == [False, True, False]


def test_arrow_of_time_keeps_the_moving_candidate_and_drops_static_or_panning_samples():
    method = build("arrow_of_time", "method.num_candidates=2", crop=24)
    tex = _texture()
    static = tex[4:28, 4:28].expand(2, 3, 4, 24, 24).clone()
    pan = torch.stack([tex[4:28, 4 + t:28 + t] for t in range(4)]).expand(2, 3, 4, 24, 24).clone()
    moving = static.clone()
    for t in range(4):
        moving[..., t, 8:14, 2 + 3 * t:8 + 3 * t] = 3.0
    # sample 0: candidates (static, moving) -> moving; sample 1: (static, pan) -> nothing usable
    cand0 = torch.stack([static[0], static[1]])
    cand1 = torch.stack([moving[0], pan[1]])
    chosen, keep = method.select_candidates([cand0, cand1])
    assert keep.tolist() == [True, False]
    assert torch.equal(chosen[0], moving[0])


def test_temporal_tasks_refuse_a_single_frame():
    for name in ("arrow_of_time", "playback_speed"):
        with pytest.raises(UserError, match="data.num_frames >= 2"):
            build(name, frames=1)


# ---- order tasks ------------------------------------------------------------------------------------------


def test_shuffle_and_learn_builds_triplets_from_the_highest_motion_window():
    method = build("shuffle_learn")
    frame_ids = torch.arange(5, dtype=torch.float).view(1, 1, 5, 1, 1)
    slow = (frame_ids * 0.1).expand(3, 3, 5, 4, 4)  # little motion
    fast = (frame_ids * 10).expand(3, 3, 5, 4, 4)  # a lot
    labels, sides = torch.tensor([1, 0, 0]), torch.tensor([0, 0, 1])
    triplets = method.build_triplets([slow, fast], labels, sides)  # (3, 3, 3, 1, 4, 4)
    assert triplets.shape == (3, 3, 3, 1, 4, 4)
    order = (triplets[:, 0, :, 0, 0, 0] / 10).round().long().tolist()
    assert order == [[1, 2, 3], [1, 0, 3], [1, 4, 3]]  # (b,c,d), (b,a,d), (b,e,d) from the fast window


def test_shuffle_and_learn_snippets_move_whole_with_their_element():
    method = build("shuffle_learn", "method.snippet_frames=2")
    # Five elements of two frames: element e holds frames 10 e and 10 e + 1.
    ids = torch.tensor([10.0 * e + f for e in range(5) for f in range(2)]).view(1, 1, 10, 1, 1).expand(2, 3, 10, 4, 4)
    triplets = method.build_triplets([ids], torch.tensor([1, 0]), torch.tensor([0, 1]), snippet_frames=2)
    assert triplets.shape == (2, 3, 3, 2, 4, 4)
    assert triplets[:, 0, :, :, 0, 0].tolist() == [[[10, 11], [20, 21], [30, 31]], [[10, 11], [40, 41], [30, 31]]]


@pytest.mark.parametrize("name", ["opn", "shuffle_learn"])
def test_order_tasks_train_a_residual_3d_backbone_on_snippets(name):
    """Snippets give a residual-input 3D backbone T >= 2 per element; one step runs and gradients reach it."""
    from videossl.methods.base import StepInfo

    torch.manual_seed(0)
    method = build(name, "method.snippet_frames=3", "backbone.name=tiny_r3d", "backbone.kwargs.input_transform=residual")
    if name == "opn":
        batch = {"video": [torch.randn(2, 3, 3, 32, 32) for _ in range(4)], "order_label": torch.tensor([0, 5])}
    else:
        batch = {"video": [torch.randn(2, 3, 15, 32, 32) for _ in range(2)], "order_label": torch.tensor([0, 1]),
                 "negative_side": torch.tensor([1, 0])}
    out = method.training_step(batch, StepInfo(0, 10, 0))
    out["loss"].backward()
    assert torch.isfinite(out["loss"])
    grads = [p.grad for p in method.backbone.parameters() if p.grad is not None]
    assert grads and any(g.abs().sum() > 0 for g in grads)


def test_opn_and_vcop_heads_match_their_label_spaces():
    opn, vcop = build("opn"), build("vcop")
    assert opn.head.classify.out_features == 12 and len(opn.head.pairs) == 6
    assert vcop.head.classify.out_features == 6 and len(vcop.head.pairs) == 3


def test_playback_speed_with_several_clips_labels_every_clip():
    method = build("playback_speed", "method.num_clips=2", "method.speeds=[1,2]")
    batch = {"video": [torch.randn(2, 3, 4, 32, 32), torch.randn(2, 3, 4, 32, 32)],
             "speed_label": [torch.tensor([0, 1]), torch.tensor([1, 1])]}
    from videossl.methods.base import StepInfo

    out = method.training_step(batch, StepInfo(0, 10, 0))
    assert torch.isfinite(out["loss"]) and out["embedding"].shape[0] == 2


# ---- image tasks as the T=1 case ---------------------------------------------------------------------------


def test_rotation_turns_every_frame_alike():
    from videossl.methods.rotation import rotate_clips

    clip = torch.zeros(1, 1, 3, 4, 4)
    clip[..., 0, 3] = 1.0  # top-right corner in every frame
    turned = rotate_clips(clip, torch.tensor([1]))  # 90 degrees counter-clockwise: top-right -> top-left
    assert turned[0, 0, :, 0, 0].tolist() == [1.0, 1.0, 1.0]
    four = clip
    for _ in range(4):
        four = rotate_clips(four, torch.tensor([1]))
    assert torch.equal(four, clip)


def test_jigsaw_puzzle_tiles_follow_the_labelled_permutation():
    method = build("jigsaw", "method.normalize_tiles=false", "method.tile_fraction=1.0", frames=1, crop=30)
    clip = torch.randn(2, 3, 1, 30, 30)
    puzzles, labels = method.make_puzzles(clip)
    tiles = crop_tiles(clip, (3, 3), 10, jitter=False)
    for b in range(2):
        perm = method.permutations[labels[b]]
        for k in range(9):
            assert torch.equal(puzzles[b, k], tiles[b, perm[k]])
    assert len(method.permutations) == 100


def test_cubic_puzzle_pieces_come_from_one_axis():
    method = build("cubic_puzzle", "method.cell_fraction=1.0", frames=4, crop=8)
    clip = torch.zeros(6, 1, 4, 8, 8)
    for t in range(4):  # value = 10 * time chunk + spatial cell
        for cell, (r, c) in enumerate([(0, 0), (0, 4), (4, 0), (4, 4)]):
            clip[:, :, t, r:r + 4, c:c + 4] = 10 * t + cell
    pieces, labels, temporal = method.make_puzzles(clip.expand(-1, 3, -1, -1, -1))
    for b in range(6):
        values = [int(pieces[b, k, 0, 0, 0, 0]) for k in range(4)]
        inverse = torch.argsort(method.permutations[labels[b]]).tolist()
        ordered = [values[i] for i in inverse]
        if temporal[b]:
            assert [v // 10 for v in ordered] == [0, 1, 2, 3] and len({v % 10 for v in ordered}) == 1
        else:
            assert [v % 10 for v in ordered] == [0, 1, 2, 3] and len({v // 10 for v in ordered}) == 1


def test_cubic_puzzle_at_one_frame_is_a_spatial_puzzle():
    method = build("cubic_puzzle", frames=1)
    _, _, temporal = method.make_puzzles(torch.randn(4, 3, 1, 32, 32))
    assert temporal.sum() == 0


def test_relative_patch_colour_dropping_keeps_one_channel():
    from videossl.methods.relative_patch import drop_colours

    pieces = torch.full((5, 3, 1, 4, 4), 7.0)
    dropped = drop_colours(pieces, noise_std=0.01)
    kept = (dropped == 7.0).all(dim=(2, 3, 4)).sum(dim=1)
    assert kept.tolist() == [1] * 5


def test_colorization_lab_bins_and_soft_targets():
    from videossl.methods.colorization import ab_bins, rgb_to_lab, soft_encode

    lab = rgb_to_lab(torch.tensor([[1.0, 1.0, 0.0], [1.0, 0.0, 0.0], [1.0, 0.0, 1.0]]).view(1, 3, 3))[0].t()
    # white, red, blue (standard sRGB D65 values, e.g. skimage.color.rgb2lab)
    assert torch.allclose(lab[0], torch.tensor([100.0, 0.0, 0.0]), atol=0.1)
    assert torch.allclose(lab[1], torch.tensor([53.24, 80.09, 67.20]), atol=0.1)
    assert torch.allclose(lab[2], torch.tensor([32.30, 79.19, -107.86]), atol=0.1)
    bins = ab_bins()
    assert 200 < len(bins) < 400 and (bins % 10 == 0).all()
    ab = torch.tensor([[0.0, 0.0], [41.0, -19.0]])
    q = soft_encode(ab, bins)
    assert torch.allclose(q.sum(1), torch.ones(2)) and ((q > 0).sum(1) == 5).all()
    assert bins[q[1].argmax()].tolist() == [40.0, -20.0]


def test_inpainting_hole_is_the_central_quarter():
    from videossl.methods.inpainting import hole_mask

    mask = hole_mask(2, 32, 32, 0.5, random_position=False, device=torch.device("cpu"))
    assert mask.sum().item() == 2 * 16 * 16 and mask[0, 0, 0, 8:24, 8:24].all()


@pytest.mark.parametrize("recipe", ["opn_synthetic_tiny3d", "shuffle_learn_synthetic_tiny3d"])
def test_snippet_recipes_train_two_steps_through_real_videos(recipe, tiny_pool, tiny_overrides, tmp_path):
    """The 3D order-task recipes decode overlapping, element-major snippets from real mp4s and train."""
    import csv
    import math
    
    from videossl.engine.trainer import pretrain

    path = recipes_dir() / f"{recipe}.yaml"
    cfg = load_pretrain_config(path, tiny_overrides(tiny_pool, tmp_path / "run", frames=4))
    assert cfg.method.snippet_frames > 1 and cfg.backbone.kwargs.input_transform == "residual"
    with open(pretrain(cfg) / "metrics.csv") as f:
        assert [math.isfinite(float(r["loss"])) for r in csv.DictReader(f)] == [True, True]
