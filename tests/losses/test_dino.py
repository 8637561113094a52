"""DINO: the loss against eq. 2-3 written out, the center update (eq. 4) and the loss's limits."""
import math

import torch

from videossl.losses.dino import dino_loss, koleo_loss, updated_center


def softmax(xs):
    m = max(xs)
    e = [math.exp(x - m) for x in xs]
    return [x / sum(e) for x in e]


def test_dino_loss_matches_equation():
    student = [torch.randn(3, 5) for _ in range(3)]  # 2 global + 1 local
    teacher = [torch.randn(3, 5) for _ in range(2)]
    center = torch.randn(1, 5)
    ts, tt = 0.1, 0.04
    total, pairs = 0.0, 0
    for i in range(2):
        for v in range(3):
            if v == i:
                continue
            h = 0.0
            for b in range(3):
                pt = softmax([(float(teacher[i][b, k]) - float(center[0, k])) / tt for k in range(5)])
                ps = softmax([float(student[v][b, k]) / ts for k in range(5)])
                h += -sum(pt[k] * math.log(ps[k]) for k in range(5))
            total, pairs = total + h / 3, pairs + 1
    assert abs(dino_loss(student, teacher, center, ts, tt).item() - total / pairs) < 1e-4


def test_dino_limits_and_stop_gradient():
    # Student equal to a one-hot teacher with sharp temperatures: cross-entropy -> 0; uniform teacher: log K.
    onehot = [20 * torch.eye(4) for _ in range(2)]
    assert dino_loss(onehot, onehot, torch.zeros(4), 0.1, 0.04).item() < 1e-6
    uniform = [torch.zeros(4, 4) for _ in range(2)]
    assert abs(dino_loss(uniform, uniform, torch.zeros(4), 0.1, 0.04).item() - math.log(4)) < 1e-6
    s = [torch.randn(2, 4, requires_grad=True) for _ in range(2)]
    t = [torch.randn(2, 4, requires_grad=True) for _ in range(2)]
    dino_loss(s, t, torch.zeros(4)).backward()
    assert all(x.grad is None for x in t) and all(x.grad is not None for x in s)


def test_center_is_momentum_average_of_batch_mean():
    center = torch.ones(1, 3)
    teacher = [torch.tensor([[0.0, 2.0, 4.0]]), torch.tensor([[2.0, 2.0, 0.0]])]
    new = updated_center(center, teacher, momentum=0.9)
    assert torch.allclose(new, 0.9 * torch.ones(1, 3) + 0.1 * torch.tensor([[1.0, 2.0, 2.0]]))


def test_koleo_is_minus_mean_log_nearest_neighbour_distance_and_spreads_a_batch():
    torch.manual_seed(0)
    x = torch.randn(6, 4)
    unit = torch.nn.functional.normalize(x, dim=-1)
    distances = torch.cdist(unit, unit) + torch.eye(6) * 10  # never its own neighbour
    expected = -torch.log(distances.min(dim=1).values).mean()
    assert torch.allclose(koleo_loss(x), expected, atol=1e-5)
    assert torch.allclose(koleo_loss(3.0 * x), expected, atol=1e-5)  # scale-free: features are normalised
    # two samples at (almost) one point cost far more than a spread batch; a gradient step spreads them apart
    crowded = torch.cat([x[:5], x[:1] + 1e-3]).requires_grad_(True)
    loss = koleo_loss(crowded)
    assert loss > koleo_loss(x) + 1.0
    loss.backward()
    moved = crowded.detach() - 0.1 * crowded.grad
    assert koleo_loss(moved) < loss.detach()


def test_svt_losses_group_dinos_pair_losses():
    """SVT's pairings use the same pair loop as dino_loss (losses/dino.py): the l->g + g->g pairs are DINO's
    teacher-global x student-all pairs, and each pairing's part is the mean of its pair losses."""
    from videossl.losses.dino import dino_pair_losses, svt_losses

    torch.manual_seed(0)
    student = [torch.randn(4, 16) for _ in range(5)]
    teacher = {i: torch.randn(4, 16) for i in range(3)}
    center = torch.randn(1, 16) * 0.1
    pairs = {"l->g": [(2, 0), (3, 0), (4, 0), (2, 1), (3, 1), (4, 1)], "g->g": [(1, 0), (0, 1)],
             "g->l": [(0, 2), (1, 2)]}
    loss, parts = svt_losses(student, teacher, pairs, center, 0.1, 0.04)
    per_pair = {p: dino_pair_losses(student, teacher, pl, center, 0.1, 0.04) for p, pl in pairs.items()}
    for pairing, values in per_pair.items():
        torch.testing.assert_close(parts[pairing], torch.stack(values).mean())
    torch.testing.assert_close(loss, torch.stack([v for vs in per_pair.values() for v in vs]).mean())
    dino_pairs = pairs["l->g"] + pairs["g->g"]
    torch.testing.assert_close(svt_losses(student, teacher, {"x": dino_pairs}, center)[0],
                               dino_loss(student, [teacher[0], teacher[1]], center))
    # one pair by hand: - sum_k softmax((t - c) / t_t) log softmax(s / t_s), batch mean
    by_hand = -(torch.softmax((teacher[2] - center) / 0.04, -1) * torch.log_softmax(student[1] / 0.1, -1)).sum(-1).mean()
    torch.testing.assert_close(dino_pair_losses(student, teacher, [(1, 2)], center)[0], by_hand)
