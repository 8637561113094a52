"""DPC's dense InfoNCE against a literal transcription of the paper's loss (Han et al. 2019, eq. 5)."""
import math

import pytest
import torch

from videossl.losses.dpc import dpc_loss


def literal_dpc_loss(pred, target, temperature=1.0):
    """-1/(B I K) sum_{b,i,k} log exp(p_bik . z_bik / tau) / sum_{b',i',k'} exp(p_bik . z_b'i'k' / tau), by loops."""
    b_, i_, k_, _ = pred.shape
    total = 0.0
    for b in range(b_):
        for i in range(i_):
            for k in range(k_):
                scores = [float(pred[b, i, k] @ target[bb, ii, kk]) / temperature
                          for bb in range(b_) for ii in range(i_) for kk in range(k_)]
                positive = float(pred[b, i, k] @ target[b, i, k]) / temperature
                total += -(positive - math.log(sum(math.exp(s) for s in scores)))
    return total / (b_ * i_ * k_)


@pytest.mark.parametrize("temperature", [1.0, 0.5])
def test_dpc_loss_matches_literal_transcription(temperature):
    g = torch.Generator().manual_seed(0)
    pred = torch.randn(3, 2, 4, 5, generator=g)
    target = torch.randn(3, 2, 4, 5, generator=g)
    loss, _ = dpc_loss(pred, target, temperature)
    assert loss.item() == pytest.approx(literal_dpc_loss(pred, target, temperature), rel=1e-5)


def test_hard_negatives_from_same_video_other_times_and_positions_count():
    # Two videos, two steps, two positions. The prediction for (0, 0, 0) matches its own target, but the same
    # video's other time step and other position are identical to it: the loss must see them as negatives.
    target = torch.zeros(2, 2, 2, 3)
    target[0, :, :, 0] = 5.0  # video 0: every step and position the same vector
    target[1, :, :, 1] = 5.0
    pred = target.clone()
    loss, top1 = dpc_loss(pred, target)
    # Each prediction ties with the 4 vectors of its own video (score 25) and beats the other video's (0).
    expected = -math.log(math.exp(25) / (4 * math.exp(25) + 4 * math.exp(0)))
    assert loss.item() == pytest.approx(expected, rel=1e-5)
    assert loss.item() > math.log(4) - 1e-3  # same-video negatives make it at least log 4


def test_perfect_distinct_predictions_reach_zero_loss_and_full_accuracy():
    target = torch.eye(12).view(2, 3, 2, 12) * 30.0  # every (b, i, k) its own orthogonal direction
    loss, top1 = dpc_loss(target.clone() / 30.0, target)
    assert loss.item() < 1e-6
    assert top1.item() == 1.0


def test_gradients_flow_to_predictions_and_targets():
    pred = torch.randn(2, 1, 3, 4, requires_grad=True)
    target = torch.randn(2, 1, 3, 4, requires_grad=True)
    dpc_loss(pred, target)[0].backward()
    assert pred.grad.abs().sum() > 0 and target.grad.abs().sum() > 0


def test_bad_shapes_raise():
    with pytest.raises(ValueError, match=r"\(B, I, K, D\)"):
        dpc_loss(torch.randn(2, 3, 4), torch.randn(2, 3, 4))
