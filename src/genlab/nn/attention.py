"""Attention from scratch: scaled dot-product, multi-head, sinusoidal positions, transformer blocks.

Readable first: `scaled_dot_product_attention` spells out softmax(Q K^T / sqrt(d_k)) V and
returns the weights. When nobody asks for the weights, `MultiHeadAttention` calls PyTorch's fused
`F.scaled_dot_product_attention` with the same mask instead (the fast path).

Masks follow `torch.nn.MultiheadAttention`: a boolean True marks a key that may NOT be attended
to (padding, the future); a float mask is added to the scores.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import Tensor, nn


def causal_mask(n_queries: int, n_keys: int, device: torch.device | None = None) -> Tensor:
    """True above the diagonal: query i may see keys 0..i (the last `n_queries` of `n_keys`)."""
    blocked = torch.ones(n_queries, n_keys, dtype=torch.bool, device=device)
    return blocked.triu(n_keys - n_queries + 1)


def as_additive(mask: Tensor | None, dtype: torch.dtype) -> Tensor | None:
    """A boolean "blocked" mask as 0 / -inf scores to add; float masks pass through."""
    if mask is None or mask.dtype != torch.bool:
        return mask
    return torch.zeros(mask.shape, dtype=dtype, device=mask.device).masked_fill(mask, -math.inf)


def scaled_dot_product_attention(
    query: Tensor,
    key: Tensor,
    value: Tensor,
    mask: Tensor | None = None,
    causal: bool = False,
    dropout_p: float = 0.0,
) -> tuple[Tensor, Tensor]:
    """softmax(Q K^T / sqrt(d_k) + mask) V over the last two dims; returns (output, weights).

    `mask` broadcasts to (..., queries, keys). The weights returned are the softmax before
    dropout: what the model attends to, rows summing to 1.
    """
    scores = query @ key.transpose(-2, -1) / math.sqrt(query.size(-1))
    if causal:
        scores = scores.masked_fill(causal_mask(*scores.shape[-2:], scores.device), -math.inf)
    if mask is not None:
        scores = scores + as_additive(mask, scores.dtype)
    weights = scores.softmax(dim=-1)
    return F.dropout(weights, dropout_p) @ value if dropout_p else weights @ value, weights


class MultiHeadAttention(nn.Module):
    """`n_heads` attentions of size d_model / n_heads over learned projections, batch first.

    Same parameters and maths as `torch.nn.MultiheadAttention(batch_first=True)` (with the
    input projection split into q/k/v), so weights copy across.
    """

    def __init__(self, d_model: int, n_heads: int, dropout: float = 0.0, bias: bool = True):
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model={d_model} must be divisible by n_heads={n_heads}")
        self.n_heads = n_heads
        self.dropout = dropout
        self.q_proj = nn.Linear(d_model, d_model, bias=bias)
        self.k_proj = nn.Linear(d_model, d_model, bias=bias)
        self.v_proj = nn.Linear(d_model, d_model, bias=bias)
        self.out_proj = nn.Linear(d_model, d_model, bias=bias)

    def _split_heads(self, x: Tensor) -> Tensor:
        batch, length, width = x.shape
        return x.view(batch, length, self.n_heads, width // self.n_heads).transpose(1, 2)

    def forward(
        self,
        query: Tensor,
        key: Tensor,
        value: Tensor,
        key_padding_mask: Tensor | None = None,
        attn_mask: Tensor | None = None,
        causal: bool = False,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None]:
        """(batch, queries, d_model) out, and weights (batch, heads, queries, keys) if asked.

        `key_padding_mask`: (batch, keys), True at padding. `attn_mask`: (queries, keys) or
        (batch, heads, queries, keys). `causal`: each query sees only keys up to its position.
        """
        q = self._split_heads(self.q_proj(query))
        k = self._split_heads(self.k_proj(key))
        v = self._split_heads(self.v_proj(value))
        mask = as_additive(attn_mask, q.dtype)
        if key_padding_mask is not None:
            padding = as_additive(key_padding_mask[:, None, None, :], q.dtype)
            mask = padding if mask is None else mask + padding
        dropout_p = self.dropout if self.training else 0.0
        if need_weights:
            out, weights = scaled_dot_product_attention(q, k, v, mask, causal, dropout_p)
        else:
            if causal and mask is not None:
                mask = mask + as_additive(causal_mask(q.size(-2), k.size(-2), q.device), q.dtype)
                causal = False
            out = F.scaled_dot_product_attention(
                q, k, v, attn_mask=mask, dropout_p=dropout_p, is_causal=causal
            )
            weights = None
        batch, _, length, _ = out.shape
        return self.out_proj(out.transpose(1, 2).reshape(batch, length, -1)), weights


def sinusoidal_positions(length: int, d_model: int) -> Tensor:
    """PE[pos, 2i] = sin(pos / 10000^(2i/d)), PE[pos, 2i+1] = cos(pos / 10000^(2i/d))."""
    position = torch.arange(length, dtype=torch.float64)[:, None]
    frequency = torch.pow(10000.0, -torch.arange(0, d_model, 2, dtype=torch.float64) / d_model)
    table = torch.zeros(length, d_model, dtype=torch.float64)
    table[:, 0::2] = torch.sin(position * frequency)
    table[:, 1::2] = torch.cos(position * frequency[: d_model // 2])
    return table.float()


class SinusoidalPositionalEncoding(nn.Module):
    """Adds the fixed sinusoidal table of "Attention Is All You Need" to (batch, length, d)."""

    def __init__(self, d_model: int, max_len: int = 512):
        super().__init__()
        self.register_buffer("table", sinusoidal_positions(max_len, d_model), persistent=False)

    def forward(self, x: Tensor) -> Tensor:
        if x.size(1) > len(self.table):
            raise ValueError(
                f"sequence of {x.size(1)} tokens is longer than max_len={len(self.table)}"
            )
        return x + self.table[: x.size(1)]


def feed_forward(d_model: int, d_ff: int, dropout: float) -> nn.Sequential:
    return nn.Sequential(
        nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model)
    )


class EncoderBlock(nn.Module):
    """Self-attention then a feed-forward layer, each pre-normed and residual."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = feed_forward(d_model, d_ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self, x: Tensor, padding: Tensor | None = None, need_weights: bool = False
    ) -> tuple[Tensor, Tensor | None]:
        h = self.norm1(x)
        h, weights = self.self_attn(h, h, h, key_padding_mask=padding, need_weights=need_weights)
        x = x + self.drop(h)
        return x + self.drop(self.ff(self.norm2(x))), weights


class DecoderBlock(nn.Module):
    """Causal self-attention, cross-attention over the encoder's output, a feed-forward layer."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float = 0.1):
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.self_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.cross_attn = MultiHeadAttention(d_model, n_heads, dropout)
        self.norm3 = nn.LayerNorm(d_model)
        self.ff = feed_forward(d_model, d_ff, dropout)
        self.drop = nn.Dropout(dropout)

    def forward(
        self,
        x: Tensor,
        memory: Tensor,
        padding: Tensor | None = None,
        memory_padding: Tensor | None = None,
        need_weights: bool = False,
    ) -> tuple[Tensor, Tensor | None, Tensor | None]:
        """Returns (x, self-attention weights, cross-attention weights)."""
        h = self.norm1(x)
        h, self_weights = self.self_attn(
            h, h, h, key_padding_mask=padding, causal=True, need_weights=need_weights
        )
        x = x + self.drop(h)
        h, cross_weights = self.cross_attn(
            self.norm2(x),
            memory,
            memory,
            key_padding_mask=memory_padding,
            need_weights=need_weights,
        )
        x = x + self.drop(h)
        return x + self.drop(self.ff(self.norm3(x))), self_weights, cross_weights
