"""V-JEPA's loss (videossl/losses/jepa.py): L1 to layer-normalised, detached targets, averaged over mask sets."""
import pytest
import torch

from videossl.losses.jepa import jepa_regression_loss, layer_normalized_targets


def test_targets_are_normalised_per_token_and_detached():
    torch.manual_seed(0)
    features = (3 * torch.randn(2, 5, 8) + 4).requires_grad_(True)
    targets = layer_normalized_targets(features)
    assert not targets.requires_grad
    assert torch.allclose(targets.mean(-1), torch.zeros(2, 5), atol=1e-5)
    assert torch.allclose(targets.var(-1, unbiased=False), torch.ones(2, 5), atol=1e-3)


def test_loss_is_the_mean_absolute_error_averaged_over_mask_sets():
    p1, t1 = torch.zeros(2, 3, 4), torch.full((2, 3, 4), 2.0)  # L1 2
    p2, t2 = torch.zeros(2, 5, 4), torch.ones(2, 5, 4)  # L1 1
    assert jepa_regression_loss([p1, p2], [t1, t2]).item() == pytest.approx(1.5)
    # loss_exp 2: mean(|z - h|^2) / 2 per set
    assert jepa_regression_loss([p1, p2], [t1, t2], loss_exp=2.0).item() == pytest.approx((4 / 2 + 1 / 2) / 2)


def test_gradient_reaches_the_prediction_only():
    torch.manual_seed(0)
    prediction, target = torch.randn(2, 3, 4, requires_grad=True), torch.randn(2, 3, 4, requires_grad=True)
    jepa_regression_loss([prediction], [target]).backward()
    assert target.grad is None
    expected = torch.sign(prediction.detach() - target.detach()) / prediction.numel()
    assert torch.allclose(prediction.grad, expected)


def test_mismatched_inputs_are_refused():
    with pytest.raises(ValueError, match="differ"):
        jepa_regression_loss([torch.zeros(2, 3, 4)], [torch.zeros(2, 4, 4)])
    with pytest.raises(ValueError, match="predictions for"):
        jepa_regression_loss([torch.zeros(1, 1, 1)], [])
