"""The one normalised-MSE loss (BYOL eq. 2 = BraVe eq. 1 = ELo's distillation): 2 - 2 cos, checked against the
squared-difference forms BraVe and ELo computed before it moved to losses/regression.py."""
import pytest
import torch
import torch.nn.functional as F

from videossl.losses.brave import brave_loss, brave_pair_loss, brave_regression_loss
from videossl.losses.regression import normalized_mse_loss


def squared_difference_form(p, z, eps=1e-12):
    """``mean_b || p/|p| - z/|z| ||^2``: the arithmetic of the former ``brave_regression_loss`` (eps 1e-6) and
    ELo's ``normalized_l2`` (F.normalize's default eps)."""
    p, z = F.normalize(p, dim=-1, eps=eps), F.normalize(z.detach(), dim=-1, eps=eps)
    return ((p - z) ** 2).sum(dim=-1).mean()


@pytest.mark.parametrize("eps", [1e-6, 1e-12])
@pytest.mark.parametrize("dim", [8, 128, 4096])
def test_two_minus_two_cos_equals_the_squared_difference_of_unit_vectors(eps, dim):
    torch.manual_seed(dim)
    worst = 0.0
    for scale in (1e-3, 1.0, 1e3):
        p = (torch.randn(64, dim) * scale).requires_grad_()
        z = torch.randn(64, dim) * scale
        near = z + 1e-3 * torch.randn_like(z)  # nearly aligned: where 2 - 2 cos cancels most
        for target in (z, near, -z):
            a, b = normalized_mse_loss(p, target), squared_difference_form(p, target, eps)
            worst = max(worst, abs(a.item() - b.item()))
            ga, = torch.autograd.grad(a, p)
            gb, = torch.autograd.grad(b, p)
            torch.testing.assert_close(ga, gb, atol=1e-6, rtol=1e-4)
    assert worst <= 1e-6


def test_stop_gradient_and_shape_check():
    p, z = torch.randn(6, 8, requires_grad=True), torch.randn(6, 8, requires_grad=True)
    normalized_mse_loss(p, z).backward()
    assert p.grad is not None and z.grad is None
    normalized_mse_loss(p, z, stop_gradient=False).backward()
    assert z.grad is not None and z.grad.abs().sum() > 0
    with pytest.raises(ValueError, match="differ"):
        normalized_mse_loss(torch.randn(6, 8), torch.randn(6, 4))


def test_brave_forms_compose_the_one_loss():
    torch.manual_seed(0)
    a, b, c, d = (torch.randn(5, 16) for _ in range(4))
    assert brave_regression_loss is normalized_mse_loss
    torch.testing.assert_close(brave_loss(a, b), 0.5 * normalized_mse_loss(a, b))
    torch.testing.assert_close(brave_loss(a, b), (1 - F.cosine_similarity(a, b, dim=-1)).mean())
    torch.testing.assert_close(brave_pair_loss(a, b, c, d), normalized_mse_loss(a, d) + normalized_mse_loss(c, b))
