"""MoCo losses against MoCo eq. 1 written out, and known limits."""
import math

import torch
import torch.nn.functional as F

from videossl.losses.contrastive import info_nce_loss
from videossl.losses.moco import moco_queue_loss, moco_v3_loss


def moco_literal(q, k, queue, t):
    """MoCo eq. 1, one query at a time: -log exp(q.k+/t) / (exp(q.k+/t) + sum_i exp(q.k_i/t))."""
    q, k, queue = F.normalize(q, dim=1), F.normalize(k, dim=1), F.normalize(queue, dim=1)
    total = 0.0
    for b in range(q.shape[0]):
        pos = math.exp(float(q[b] @ k[b]) / t)
        neg = sum(math.exp(float(q[b] @ queue[j]) / t) for j in range(queue.shape[0]))
        total += -math.log(pos / (pos + neg))
    return total / q.shape[0]


def test_moco_queue_loss_matches_equation():
    q, k, queue = torch.randn(5, 8), torch.randn(5, 8), torch.randn(7, 8)
    assert abs(moco_queue_loss(q, k, queue, 0.2).item() - moco_literal(q, k, queue, 0.2)) < 1e-5


def test_moco_identical_key_orthogonal_queue():
    # q = k (similarity 1), queue orthogonal to every query (similarity 0): -log e^{1/t} / (e^{1/t} + K)
    t, k_size = 0.2, 6
    q = torch.eye(8)[:2]
    queue = torch.eye(8)[2:2 + k_size]
    expected = -math.log(math.exp(1 / t) / (math.exp(1 / t) + k_size))
    assert abs(moco_queue_loss(q, q.clone(), queue, t).item() - expected) < 1e-5


def test_moco_key_gets_no_gradient():
    q, k = torch.randn(4, 8, requires_grad=True), torch.randn(4, 8, requires_grad=True)
    moco_queue_loss(q, k, torch.randn(10, 8)).backward()
    assert q.grad is not None and k.grad is None


def test_moco_v3_is_symmetric_info_nce_scaled_by_two_t():
    q1, q2, k1, k2 = (torch.randn(6, 8) for _ in range(4))
    t = 0.2
    expected = 2 * t * (info_nce_loss(q1, k2, t) + info_nce_loss(q2, k1, t))
    assert torch.allclose(moco_v3_loss(q1, q2, k1, k2, t), expected)
    # Literal: each query picks its own key among the B keys of the other view.
    qn, kn = F.normalize(q1, dim=1), F.normalize(k2, dim=1)
    literal = sum(-math.log(math.exp(float(qn[i] @ kn[i]) / t)
                            / sum(math.exp(float(qn[i] @ kn[j]) / t) for j in range(6))) for i in range(6)) / 6
    assert abs(info_nce_loss(q1, k2, t).item() - literal) < 1e-5
