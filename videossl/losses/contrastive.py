"""Contrastive losses: NT-Xent / InfoNCE with in-batch negatives gathered across processes."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .distributed import gather_with_grad, rank


def nt_xent_loss(z1: torch.Tensor, z2: torch.Tensor, temperature: float = 0.1) -> torch.Tensor:
    """NT-Xent of SimCLR (Chen et al., ICML 2020, eq. 1), symmetric over the two views.

    z1, z2: ``(B, D)`` embeddings of two views of the same B samples (need not be normalised). Every other
    embedding of either view in the *global* batch (all processes) is a negative: for ``i`` in view 1,

        l_i = -log exp(s(z1_i, z2_i)/t) / sum_{k != i} exp(s(z1_i, zall_k)/t)

    over the 2N-1 candidates ``zall = [z1; z2]`` of the global batch N = world * B. Returns the mean over the
    2N anchors of this process's share (scaled so the mean over processes equals the 1-process loss).
    """
    z1, z2 = F.normalize(z1, dim=-1), F.normalize(z2, dim=-1)
    batch = z1.shape[0]
    all1, all2 = gather_with_grad(z1), gather_with_grad(z2)  # (N, D)
    n = all1.shape[0]
    candidates = torch.cat([all1, all2], dim=0)  # (2N, D)
    anchors = torch.cat([z1, z2], dim=0)  # (2B, D) local anchors
    logits = anchors @ candidates.T / temperature  # (2B, 2N)
    offset = rank() * batch
    local = torch.arange(batch, device=z1.device) + offset
    self_index = torch.cat([local, local + n])  # where each anchor sits among the candidates
    positive_index = torch.cat([local + n, local])
    logits = logits.masked_fill(F.one_hot(self_index, 2 * n).bool(), float("-inf"))
    return F.cross_entropy(logits, positive_index)


def info_nce_loss(query: torch.Tensor, keys: torch.Tensor, temperature: float = 0.07) -> torch.Tensor:
    """One-directional InfoNCE (van den Oord et al. 2018; MoCo v3's form): query ``(B, D)`` must pick its own
    key ``(B, D)`` among all keys of the global batch. Both are L2-normalised here."""
    query, keys = F.normalize(query, dim=-1), F.normalize(keys, dim=-1)
    all_keys = gather_with_grad(keys)
    logits = query @ all_keys.T / temperature
    target = torch.arange(query.shape[0], device=query.device) + rank() * query.shape[0]
    return F.cross_entropy(logits, target)
