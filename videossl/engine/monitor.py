"""Collapse monitor: per-dimension std of L2-normalised embeddings and their effective rank.

A collapsed representation has std -> 0 (all embeddings equal; SimSiam, Chen & He 2021, fig. 2 uses this
std, whose healthy value is ~1/sqrt(D)) or a low effective rank (Roy & Vetterli 2007: exp of the entropy of
the normalised singular values; used by RankMe, Garrido et al. 2023).
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F


@torch.no_grad()
def collapse_stats(embedding: torch.Tensor) -> dict[str, float]:
    """embedding ``(B, D)`` -> ``{"emb_std": mean per-dim std * sqrt(D), "emb_rank": effective rank}``.

    ``emb_std`` is scaled by sqrt(D) so 1.0 means spread like a uniform distribution on the sphere and 0.0
    means full collapse, whatever D is.
    """
    z = F.normalize(embedding.float(), dim=-1)
    dim = z.shape[1]
    std = z.std(dim=0).mean().item() * math.sqrt(dim) if z.shape[0] > 1 else float("nan")
    s = torch.linalg.svdvals(z - z.mean(dim=0))
    p = s / s.sum().clamp_min(1e-12)
    entropy = -(p * torch.log(p.clamp_min(1e-12))).sum().item()
    return {"emb_std": std, "emb_rank": math.exp(entropy)}


COLLAPSE_STD = 0.05  # below this the monitor warns (relative to a healthy 1.0)
