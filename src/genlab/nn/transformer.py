"""A small encoder-decoder Transformer ("Attention Is All You Need", pre-norm) for translation."""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from genlab.nn.attention import DecoderBlock, EncoderBlock, SinusoidalPositionalEncoding


@dataclass
class AttentionWeights:
    """Per-layer weights, each (layers, batch, heads, queries, keys)."""

    encoder: Tensor
    decoder: Tensor
    cross: Tensor


class Transformer(nn.Module):
    """Token ids in, next-token logits out. `pad_id` marks padding in both languages."""

    def __init__(
        self,
        src_vocab_size: int,
        tgt_vocab_size: int,
        d_model: int = 128,
        n_heads: int = 4,
        n_encoder_layers: int = 2,
        n_decoder_layers: int = 2,
        d_ff: int = 512,
        dropout: float = 0.1,
        max_len: int = 256,
        pad_id: int = 0,
    ):
        super().__init__()
        self.pad_id = pad_id
        self.d_model = d_model
        self.src_embed = nn.Embedding(src_vocab_size, d_model, padding_idx=pad_id)
        self.tgt_embed = nn.Embedding(tgt_vocab_size, d_model, padding_idx=pad_id)
        self.positions = SinusoidalPositionalEncoding(d_model, max_len)
        self.drop = nn.Dropout(dropout)
        self.encoder = nn.ModuleList(
            EncoderBlock(d_model, n_heads, d_ff, dropout) for _ in range(n_encoder_layers)
        )
        self.decoder = nn.ModuleList(
            DecoderBlock(d_model, n_heads, d_ff, dropout) for _ in range(n_decoder_layers)
        )
        self.encoder_norm = nn.LayerNorm(d_model)
        self.decoder_norm = nn.LayerNorm(d_model)
        self.generator = nn.Linear(d_model, tgt_vocab_size)
        # Embeddings start at std d_model^-0.5 so that, scaled by sqrt(d_model), they are about
        # as large as the positional encoding (PyTorch's N(0, 1) would drown the positions).
        for embedding in (self.src_embed, self.tgt_embed):
            nn.init.normal_(embedding.weight, std=d_model**-0.5)
            with torch.no_grad():
                embedding.weight[pad_id].zero_()

    def _embed(self, embedding: nn.Embedding, ids: Tensor) -> Tensor:
        return self.drop(self.positions(embedding(ids) * math.sqrt(self.d_model)))

    def encode(self, src: Tensor, need_weights: bool = False) -> tuple[Tensor, list[Tensor]]:
        """The encoder's output (batch, src_len, d_model) and, if asked, each layer's weights."""
        x, weights = self._embed(self.src_embed, src), []
        padding = src == self.pad_id
        for block in self.encoder:
            x, w = block(x, padding, need_weights)
            weights.append(w)
        return self.encoder_norm(x), weights

    def decode(
        self, tgt: Tensor, memory: Tensor, src: Tensor, need_weights: bool = False
    ) -> tuple[Tensor, list[Tensor], list[Tensor]]:
        """Logits (batch, tgt_len, vocab) for teacher-forced `tgt`, and per-layer weights."""
        x, self_weights, cross_weights = self._embed(self.tgt_embed, tgt), [], []
        padding, memory_padding = tgt == self.pad_id, src == self.pad_id
        for block in self.decoder:
            x, w_self, w_cross = block(x, memory, padding, memory_padding, need_weights)
            self_weights.append(w_self)
            cross_weights.append(w_cross)
        return self.generator(self.decoder_norm(x)), self_weights, cross_weights

    def forward(self, src: Tensor, tgt: Tensor) -> Tensor:
        memory, _ = self.encode(src)
        return self.decode(tgt, memory, src)[0]

    def attention(self, src: Tensor, tgt: Tensor) -> AttentionWeights:
        """Every attention weight of one teacher-forced pass (no dropout if in eval mode)."""
        memory, encoder = self.encode(src, need_weights=True)
        _, decoder, cross = self.decode(tgt, memory, src, need_weights=True)
        return AttentionWeights(torch.stack(encoder), torch.stack(decoder), torch.stack(cross))

    @torch.no_grad()
    def greedy_decode(self, src: Tensor, bos_id: int, eos_id: int, max_len: int) -> Tensor:
        """Argmax decoding, batched: (batch, <= max_len) ids, eos included, pad after it."""
        memory, _ = self.encode(src)
        ys = torch.full((src.size(0), 1), bos_id, dtype=torch.long, device=src.device)
        finished = torch.zeros(src.size(0), dtype=torch.bool, device=src.device)
        for _ in range(max_len):
            logits = self.decode(ys, memory, src)[0][:, -1]
            token = logits.argmax(-1).masked_fill(finished, self.pad_id)
            ys = torch.cat([ys, token[:, None]], dim=1)
            finished |= token == eos_id
            if finished.all():
                break
        return ys[:, 1:]
