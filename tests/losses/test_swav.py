"""SwAV: Sinkhorn-Knopp against the algorithm written out, equipartition, and the swapped prediction loss."""
import math

import torch

from videossl.losses.swav import sinkhorn_knopp, swapped_prediction_loss


def sinkhorn_literal(scores, eps, iters):
    """SwAV alg. 1 with plain lists: Q = exp(S^T / eps); alternately rows -> 1/K and columns -> 1/B."""
    b, k = len(scores), len(scores[0])
    q = [[math.exp(scores[j][i] / eps) for j in range(b)] for i in range(k)]  # (K, B)
    total = sum(map(sum, q))
    q = [[x / total for x in row] for row in q]
    for _ in range(iters):
        q = [[x / sum(row) / k for x in row] for row in q]
        cols = [sum(q[i][j] for i in range(k)) for j in range(b)]
        q = [[q[i][j] / cols[j] / b for j in range(b)] for i in range(k)]
    return [[q[i][j] * b for i in range(k)] for j in range(b)]  # (B, K), rows sum to 1


def test_sinkhorn_matches_algorithm():
    scores = torch.randn(6, 4).tanh()
    expected = torch.tensor(sinkhorn_literal(scores.tolist(), 0.5, 3))
    assert torch.allclose(sinkhorn_knopp(scores, 0.5, 3), expected, atol=1e-5)


def test_sinkhorn_equipartitions_prototypes():
    # All samples prefer prototype 0; with enough iterations each of K prototypes still gets B / K samples' mass.
    scores = torch.zeros(8, 4)
    scores[:, 0] = 1.0
    scores += 0.1 * torch.randn(8, 4)
    codes = sinkhorn_knopp(scores, 0.5, 50)
    assert torch.allclose(codes.sum(dim=1), torch.ones(8), atol=1e-5)
    assert torch.allclose(codes.sum(dim=0), torch.full((4,), 2.0), atol=1e-3)


def test_swapped_prediction_loss_matches_equation():
    scores = [torch.randn(3, 5) for _ in range(4)]  # 2 global + 2 local crops
    codes = [torch.softmax(torch.randn(3, 5), dim=1) for _ in range(2)]
    t = 0.1

    def ce(q, s):
        return sum(-sum(float(q[b, k]) * (float(s[b, k]) / t - math.log(sum(math.exp(float(s[b, j]) / t)
                                                                             for j in range(5))))
                        for k in range(5)) for b in range(3)) / 3

    expected = sum(sum(ce(codes[i], scores[v]) for v in range(4) if v != i) / 3 for i in range(2)) / 2
    assert abs(swapped_prediction_loss(scores, codes, t).item() - expected) < 1e-4


def test_swapped_prediction_limit_one_hot_codes_and_confident_scores():
    # Codes one-hot on the prototype every crop scores highest, with a large margin: loss -> 0.
    scores = [10 * torch.eye(3) for _ in range(2)]
    assert swapped_prediction_loss(scores, [torch.eye(3), torch.eye(3)], 0.1).item() < 1e-6
