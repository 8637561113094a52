"""NNCLR: nearest neighbours from a support set as positives (Dwibedi et al., ICCV 2021)."""
from __future__ import annotations

import torch
import torch.nn.functional as F

from .contrastive import info_nce_loss


@torch.no_grad()
def nearest_neighbour(z: torch.Tensor, support: torch.Tensor) -> torch.Tensor:
    """NNCLR eq. 2: ``NN(z, Q) = argmin_{q in Q} ||z - q||`` on L2-normalised vectors (= max cosine).

    z: ``(B, D)``; support: ``(Q, D)``. Returns the normalised support vectors ``(B, D)`` (no gradient).
    """
    z, support = F.normalize(z, dim=-1), F.normalize(support, dim=-1)
    return support[(z @ support.T).argmax(dim=1)]


def nnclr_loss(z1: torch.Tensor, z2: torch.Tensor, p1: torch.Tensor, p2: torch.Tensor, support: torch.Tensor,
               temperature: float = 0.1) -> torch.Tensor:
    """NNCLR eq. 3 with the prediction head (sec. 3.2), symmetrised:

        L_i = -log exp(NN(z1_i) . p2_i / t) / sum_k exp(NN(z1_i) . p2_k / t)

    averaged with the same term for ``(z2, p1)``. z1, z2: ``(B, D)`` projections (the support-set queries);
    p1, p2: ``(B, D)`` predictions; support: ``(Q, D)``; t = 0.1 (NNCLR sec. 4.1). The candidates ``p_k`` are
    gathered with gradients across processes (``info_nce_loss``), so the negatives are the global batch.
    """
    return 0.5 * (info_nce_loss(nearest_neighbour(z1, support), p2, temperature)
                  + info_nce_loss(nearest_neighbour(z2, support), p1, temperature))
