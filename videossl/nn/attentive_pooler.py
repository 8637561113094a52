"""The attentive probe's pooler (V-JEPA's frozen evaluation, Bardes et al. 2024): a learned query cross-attends to
patch tokens ``(B, N, D)``, then a linear classifier. Read from facebookresearch/jepa ``src/models/attentive_pooler.py``
and ``src/models/utils/modules.py``; ``videossl.eval.attentive`` trains it on frozen encoders.
"""
from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn


class CrossAttentionBlock(nn.Module):
    """One pre-norm cross-attention block: ``q (B, n, D)`` attends to ``x (B, N, D)`` -> ``(B, n, D)``.

    ``q = q + proj(attn(W_q q, W_kv LN(x)))``, then ``q = q + MLP(LN(q))``: the query itself is not normalised before
    the attention, as in facebookresearch/jepa ``src/models/utils/modules.py`` (``CrossAttentionBlock``,
    ``CrossAttention``: separate ``q`` and ``kv`` linear layers with bias, scaled dot-product attention, GELU MLP).
    """

    def __init__(self, dim: int, num_heads: int, mlp_ratio: float = 4.0, qkv_bias: bool = True):
        super().__init__()
        if dim % num_heads:
            raise ValueError(f"CrossAttentionBlock: dim {dim} is not divisible by num_heads {num_heads}")
        self.num_heads = num_heads
        self.norm1 = nn.LayerNorm(dim)
        self.q = nn.Linear(dim, dim, bias=qkv_bias)
        self.kv = nn.Linear(dim, 2 * dim, bias=qkv_bias)
        self.proj = nn.Linear(dim, dim)
        self.norm2 = nn.LayerNorm(dim)
        hidden = int(dim * mlp_ratio)
        self.mlp = nn.Sequential(nn.Linear(dim, hidden), nn.GELU(), nn.Linear(hidden, dim))

    def forward(self, q: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        b, n, d = q.shape
        heads = self.num_heads
        query = self.q(q).view(b, n, heads, d // heads).transpose(1, 2)  # (B, h, n, d/h)
        k, v = self.kv(self.norm1(x)).view(b, x.shape[1], 2, heads, d // heads).permute(2, 0, 3, 1, 4)  # (B, h, N, d/h)
        attended = F.scaled_dot_product_attention(query, k, v).transpose(1, 2).reshape(b, n, d)
        q = q + self.proj(attended)
        return q + self.mlp(self.norm2(q))


class AttentivePooler(nn.Module):
    """``(B, N, D)`` tokens -> ``(B, num_queries, D)``: learned query token(s) through one cross-attention block
    (V-JEPA's attentive probe, Bardes et al. 2024, sec. 4; facebookresearch/jepa ``src/models/attentive_pooler.py``,
    ``depth=1``, ``complete_block=True``). Initialisation as there: truncated normal std 0.02 for the query and
    every linear weight, zero biases, the residual output projections (attention ``proj``, MLP ``fc2``) divided
    by ``sqrt(2)`` (``_rescale_blocks`` at layer 1)."""

    def __init__(self, dim: int, num_heads: int, num_queries: int = 1, mlp_ratio: float = 4.0,
                 init_std: float = 0.02):
        super().__init__()
        self.query = nn.Parameter(torch.zeros(1, num_queries, dim))
        self.block = CrossAttentionBlock(dim, num_heads, mlp_ratio)
        nn.init.trunc_normal_(self.query, std=init_std)
        for module in self.modules():
            if isinstance(module, nn.Linear):
                nn.init.trunc_normal_(module.weight, std=init_std)
                nn.init.zeros_(module.bias)
        with torch.no_grad():
            self.block.proj.weight.div_(math.sqrt(2.0))
            self.block.mlp[2].weight.div_(math.sqrt(2.0))

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.block(self.query.expand(tokens.shape[0], -1, -1).to(tokens.dtype), tokens)


class AttentiveClassifier(nn.Module):
    """``(B, N, D)`` frozen tokens -> ``(B, num_classes)`` logits: ``AttentivePooler`` (one query) then a linear
    layer (facebookresearch/jepa ``AttentiveClassifier``; the linear layer keeps PyTorch's default init there)."""

    def __init__(self, dim: int, num_classes: int, num_heads: int, mlp_ratio: float = 4.0):
        super().__init__()
        self.pooler = AttentivePooler(dim, num_heads, num_queries=1, mlp_ratio=mlp_ratio)
        self.linear = nn.Linear(dim, num_classes)

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        return self.linear(self.pooler(tokens).squeeze(1))
