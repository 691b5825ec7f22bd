"""The small transformer block of E-NeRV's spatial stem (post-residual, no normalisation).

tokens [B, P, D] -> x + Attention(x) -> x + FeedForward(x) -> [B, P, D]. Attention: a bias-free
Linear D -> 3 * heads * dim_head gives q, k, v; softmax(q k^T / sqrt(dim_head)) v per head;
a Linear heads * dim_head -> D projects back (skipped when heads == 1 and dim_head == D, as in
the public code). FeedForward: Linear D -> mlp_dim -> GELU -> Linear mlp_dim -> D.
"""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


class Attention(nn.Module):
    """Multi-head self-attention over P tokens: [B, P, D] -> [B, P, D]."""

    def __init__(self, dim: int, heads: int, dim_head: int) -> None:
        super().__init__()
        self.heads, self.dim_head = heads, dim_head
        inner = heads * dim_head
        self.to_qkv = nn.Linear(dim, 3 * inner, bias=False)
        self.to_out = nn.Identity() if heads == 1 and dim_head == dim else nn.Linear(inner, dim)

    def forward(self, x: Tensor) -> Tensor:
        b, p, _ = x.shape
        q, k, v = (t.view(b, p, self.heads, self.dim_head).transpose(1, 2)
                   for t in self.to_qkv(x).chunk(3, dim=-1))
        out = F.scaled_dot_product_attention(q, k, v)  # [B, heads, P, dim_head]
        return self.to_out(out.transpose(1, 2).reshape(b, p, self.heads * self.dim_head))


class TransformerBlock(nn.Module):
    """[B, P, D] -> x + attn(x) -> x + ffn(x)."""

    def __init__(self, dim: int, heads: int, dim_head: int, mlp_dim: int) -> None:
        super().__init__()
        self.attn = Attention(dim, heads, dim_head)
        self.ffn = nn.Sequential(nn.Linear(dim, mlp_dim), nn.GELU(), nn.Linear(mlp_dim, dim))

    def forward(self, x: Tensor) -> Tensor:
        x = x + self.attn(x)
        return x + self.ffn(x)
