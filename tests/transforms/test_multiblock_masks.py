"""V-JEPA's multi-block 3D masks (videossl/transforms/masks.py): block sizes follow the configured scale and aspect
ranges, blocks are tubes over the whole clip, context and target split every token, every sample keeps some context,
and the index lists are cut as the reference cuts them."""
import pytest
import torch

from videossl.transforms.masks import (MultiBlockMaskSpec, fit_clip_to_tubelet, mask_counts, mask_indices,
                                       multiblock_mask, sample_block_shape)

GRID = (8, 14, 14)  # V-JEPA ViT-L: 16 frames / tubelet 2, 224 px / patch 16
SHORT = MultiBlockMaskSpec(num_blocks=8, spatial_scale=(0.15, 0.15))
LONG = MultiBlockMaskSpec(num_blocks=2, spatial_scale=(0.7, 0.7))


def shapes_for(scale, ratios, grid=GRID):
    """Every (h, w) the reference's rounding gives for aspect ratios in ``ratios`` at this scale."""
    keep = int(grid[1] * grid[2] * scale)
    return {(min(round((keep * r) ** 0.5), grid[1]), min(round((keep / r) ** 0.5), grid[2]))
            for r in torch.linspace(ratios[0], ratios[1], 1001).tolist()}


def draw(spec, batch=64, grid=GRID, seed=0):
    gen = torch.Generator().manual_seed(seed)
    shape = sample_block_shape(grid, spec, gen)
    return shape, multiblock_mask(batch, grid, spec, shape, generator=gen)


@pytest.mark.parametrize("spec,scale", [(SHORT, 0.15), (LONG, 0.7)], ids=["short", "long"])
def test_one_block_covers_the_configured_fraction_of_the_frame(spec, scale):
    one = MultiBlockMaskSpec(num_blocks=1, spatial_scale=spec.spatial_scale)
    for seed in range(20):
        (t, h, w), mask = draw(one, batch=8, seed=seed)
        assert t == GRID[0]  # temporal_scale 1: the block spans every time step
        assert (h, w) in shapes_for(spec.spatial_scale[0], one.aspect_ratio)  # an aspect ratio in the range
        fractions = mask[:, 0].flatten(1).float().mean(dim=1)
        assert torch.all(fractions == h * w / (GRID[1] * GRID[2]))  # every sample: one block of that shape
        assert abs(h * w / (GRID[1] * GRID[2]) - scale) < 0.04, (h, w)


def test_union_of_blocks_lies_between_one_block_and_their_sum():
    for spec in (SHORT, LONG):
        (t, h, w), mask = draw(spec, batch=256)
        block = h * w / (GRID[1] * GRID[2])
        fractions = mask[:, 0].flatten(1).float().mean(dim=1)
        assert torch.all(fractions >= block - 1e-6)
        assert torch.all(fractions <= min(1.0, spec.num_blocks * block) + 1e-6)
        assert fractions.std() > 0  # positions differ between samples
        assert torch.all(fractions < 1.0)  # some context is always left


def test_masks_are_tubes_the_same_spatial_mask_at_every_time_step():
    for spec in (SHORT, LONG):
        _, mask = draw(spec)
        assert torch.equal(mask, mask[:, :1].expand_as(mask))
    # the test can fail: blocks over half the clip are not tubes
    half = MultiBlockMaskSpec(num_blocks=2, spatial_scale=(0.15, 0.15), temporal_scale=(0.5, 0.5))
    (t, _, _), mask = draw(half)
    assert t == GRID[0] // 2 and not torch.equal(mask, mask[:, :1].expand_as(mask))


def test_max_temporal_keep_puts_the_late_time_steps_in_the_target():
    spec = MultiBlockMaskSpec(num_blocks=1, spatial_scale=(0.15, 0.15), max_temporal_keep=0.5)
    _, mask = draw(spec)
    assert mask[:, 4:].all() and not mask[:, :4].all()


def test_context_and_target_are_disjoint_and_cover_every_token():
    _, mask = draw(SHORT, batch=16)
    flat = mask.flatten(1)
    for row in flat:
        context, target = mask_indices(row[None], *mask_counts(row[None]))
        assert set(context[0].tolist()).isdisjoint(target[0].tolist())
        assert sorted(context[0].tolist() + target[0].tolist()) == list(range(flat.shape[1]))
        assert not row[context[0]].any() and row[target[0]].all()


def test_index_lists_are_cut_to_the_fewest_tokens_keeping_the_lowest_indices():
    _, mask = draw(LONG, batch=16)
    flat = mask.flatten(1)
    context_keep, target_keep = mask_counts(mask)
    assert context_keep == int((~flat).sum(1).min()) and target_keep == int(flat.sum(1).min())
    context, target = mask_indices(mask, context_keep, target_keep)
    assert context.shape == (16, context_keep) and target.shape == (16, target_keep)
    for i in range(16):
        assert context[i].tolist() == torch.nonzero(~flat[i]).flatten()[:context_keep].tolist()
        assert target[i].tolist() == torch.nonzero(flat[i]).flatten()[:target_keep].tolist()
    with pytest.raises(ValueError, match="cannot keep"):
        mask_indices(mask, context_keep + 1, target_keep)


def test_block_shape_is_one_per_batch_and_reproducible_from_the_seed():
    gen_a, gen_b = torch.Generator().manual_seed(3), torch.Generator().manual_seed(3)
    assert sample_block_shape(GRID, SHORT, gen_a) == sample_block_shape(GRID, SHORT, gen_b)
    one = MultiBlockMaskSpec(num_blocks=1, spatial_scale=(0.3, 0.3))
    (t, h, w), mask = draw(one, batch=32)
    for sample in mask[:, 0]:
        rows, cols = torch.nonzero(sample, as_tuple=True)
        assert (rows.max() - rows.min() + 1, cols.max() - cols.min() + 1) == (h, w)


def test_a_small_grid_is_redrawn_until_context_remains_or_refused():
    torch.manual_seed(0)
    grid = (1, 4, 4)  # two 70% blocks (4 x 3 at aspect 1.5) can cover this grid: such samples are redrawn
    spec = MultiBlockMaskSpec(num_blocks=2, spatial_scale=(0.7, 0.7), aspect_ratio=(1.5, 1.5))
    shape = sample_block_shape(grid, spec, torch.Generator().manual_seed(0))
    assert shape == (1, 4, 3)
    mask = multiblock_mask(512, grid, spec, shape)
    assert not mask.flatten(1).all(dim=1).any()
    whole = MultiBlockMaskSpec(num_blocks=1, spatial_scale=(1.0, 1.0), aspect_ratio=(1.0, 1.0))
    with pytest.raises(ValueError, match="leave no context"):
        multiblock_mask(2, grid, whole, (1, 4, 4), max_tries=3)


def test_bad_specs_and_clips_are_refused():
    with pytest.raises(ValueError, match="num_blocks"):
        MultiBlockMaskSpec(num_blocks=0, spatial_scale=(0.1, 0.1))
    with pytest.raises(ValueError, match="spatial_scale"):
        MultiBlockMaskSpec(num_blocks=1, spatial_scale=(0.5, 0.2))
    image = torch.randn(2, 3, 1, 8, 8)
    assert torch.equal(fit_clip_to_tubelet(image, 2), image.expand(-1, -1, 2, -1, -1))
    with pytest.raises(ValueError, match="multiple of the tubelet"):
        fit_clip_to_tubelet(torch.randn(2, 3, 3, 8, 8), 2)
