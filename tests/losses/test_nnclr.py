"""NNCLR: nearest neighbours from the support set and the loss against eq. 3 written out."""
import math

import torch
import torch.nn.functional as F

from videossl.losses.nnclr import nearest_neighbour, nnclr_loss


def test_nearest_neighbour_is_closest_support_vector():
    support = torch.tensor([[1.0, 0.0], [0.0, 1.0], [-1.0, 0.0]])
    z = torch.tensor([[0.9, 0.1], [-3.0, 0.5], [0.2, 5.0]])
    assert torch.equal(nearest_neighbour(z, support), support[[0, 2, 1]])


def test_nnclr_loss_matches_equation():
    z1, z2, p1, p2 = (torch.randn(4, 6) for _ in range(4))
    support, t = torch.randn(9, 6), 0.1

    def direction(z, p):
        nn = F.normalize(support, dim=1)[(F.normalize(z, dim=1) @ F.normalize(support, dim=1).T).argmax(1)]
        p = F.normalize(p, dim=1)
        return sum(-math.log(math.exp(float(nn[i] @ p[i]) / t) / sum(math.exp(float(nn[i] @ p[k]) / t)
                                                                     for k in range(4))) for i in range(4)) / 4

    expected = 0.5 * (direction(z1, p2) + direction(z2, p1))
    assert abs(nnclr_loss(z1, z2, p1, p2, support, t).item() - expected) < 1e-4


def test_nnclr_gradient_flows_to_predictions_only():
    z1, z2 = torch.randn(4, 6, requires_grad=True), torch.randn(4, 6, requires_grad=True)
    p1, p2 = torch.randn(4, 6, requires_grad=True), torch.randn(4, 6, requires_grad=True)
    nnclr_loss(z1, z2, p1, p2, torch.randn(5, 6)).backward()
    assert z1.grad is None and z2.grad is None and p1.grad is not None and p2.grad is not None
