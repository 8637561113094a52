"""SimSiam's loss against eq. 4 and its limits."""
import torch

from videossl.losses.simsiam import negative_cosine_similarity, simsiam_loss


def test_simsiam_loss_matches_equation():
    p1, p2, z1, z2 = (torch.randn(5, 8) for _ in range(4))
    d = lambda p, z: -sum(float(p[i] @ z[i]) / (float(p[i].norm()) * float(z[i].norm())) for i in range(5)) / 5
    expected = 0.5 * d(p1, z2) + 0.5 * d(p2, z1)
    assert abs(simsiam_loss(p1, p2, z1, z2).item() - expected) < 1e-6


def test_simsiam_minimum_is_minus_one_and_target_is_stopped():
    z = torch.randn(4, 8, requires_grad=True)
    p = (3 * z.detach()).requires_grad_(True)
    loss = simsiam_loss(p, p, z, z)
    assert abs(loss.item() + 1.0) < 1e-6  # aligned predictions: cosine 1
    loss.backward()
    assert z.grad is None and p.grad is not None
    assert abs(negative_cosine_similarity(torch.eye(3), -torch.eye(3)).item() - 1.0) < 1e-6  # opposite: +1
