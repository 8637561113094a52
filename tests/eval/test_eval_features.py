"""Feature extraction helpers."""
import torch


def test_forward_distinct_views_runs_each_distinct_view_once():
    from videossl.eval.features import forward_distinct_views

    seen = []

    def forward(x):  # (n, C, T, H, W) -> (n, 2): remembers how many clips it saw
        seen.append(x.shape[0])
        return torch.stack([x.flatten(1).sum(1), x.flatten(1).amax(1)], 1)

    gen = torch.Generator().manual_seed(0)
    a, b, c = (torch.randn(3, 2, 4, 4, generator=gen) for _ in range(3))
    views = torch.stack([torch.stack([a, a, a, b]), torch.stack([c, a, a, c])])  # (2, 4, C, T, H, W)
    out = forward_distinct_views(views, forward, torch.device("cpu"), chunk=3)
    assert sum(seen) == 5  # video 0: a, b; video 1: c, a, c (a repeat only counts right after itself)
    expected = forward(views.flatten(0, 1)).view(2, 4, 2)
    assert torch.allclose(out, expected)
