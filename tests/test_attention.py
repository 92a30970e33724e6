"""Attention from scratch against PyTorch's, and the encoder-decoder built from it."""

from __future__ import annotations

import math

import pytest
import torch

from genlab.nn.attention import (
    MultiHeadAttention,
    SinusoidalPositionalEncoding,
    causal_mask,
    scaled_dot_product_attention,
    sinusoidal_positions,
)
from genlab.nn.transformer import Transformer

D_MODEL, HEADS = 32, 4


def _pair(dropout: float = 0.0) -> tuple[MultiHeadAttention, torch.nn.MultiheadAttention]:
    """genlab's attention with the weights of a fresh torch.nn.MultiheadAttention."""
    torch.manual_seed(0)
    reference = torch.nn.MultiheadAttention(D_MODEL, HEADS, dropout=dropout, batch_first=True)
    torch.nn.init.normal_(reference.in_proj_bias)
    torch.nn.init.normal_(reference.out_proj.bias)
    ours = MultiHeadAttention(D_MODEL, HEADS, dropout=dropout)
    q, k, v = reference.in_proj_weight.chunk(3)
    qb, kb, vb = reference.in_proj_bias.chunk(3)
    with torch.no_grad():
        for proj, weight, bias in (
            (ours.q_proj, q, qb),
            (ours.k_proj, k, kb),
            (ours.v_proj, v, vb),
            (ours.out_proj, reference.out_proj.weight, reference.out_proj.bias),
        ):
            proj.weight.copy_(weight)
            proj.bias.copy_(bias)
    return ours.eval(), reference.eval()


def _masks(batch: int, n_queries: int, n_keys: int) -> dict[str, dict]:
    padding = torch.zeros(batch, n_keys, dtype=torch.bool)
    padding[0, -2:] = True  # the first sequence has two padded keys
    padding[1, -1:] = True
    blocked = torch.rand(n_queries, n_keys, generator=torch.Generator().manual_seed(1)) < 0.3
    blocked[:, 0] = False  # every query keeps a key it may see
    return {
        "none": {},
        "padding": {"key_padding_mask": padding},
        "attn_mask": {"attn_mask": blocked},
        "both": {"key_padding_mask": padding, "attn_mask": blocked},
        "causal": {"attn_mask": causal_mask(n_queries, n_keys)},
        "causal+padding": {
            "attn_mask": causal_mask(n_queries, n_keys),
            "key_padding_mask": padding,
        },
    }


@pytest.mark.parametrize(
    "mask_name", ["none", "padding", "attn_mask", "both", "causal", "causal+padding"]
)
@pytest.mark.parametrize("cross", [False, True], ids=["self", "cross"])
def test_multi_head_attention_matches_torch(mask_name: str, cross: bool):
    ours, reference = _pair()
    torch.manual_seed(2)
    n_queries, n_keys = (5, 7) if cross else (6, 6)
    if "causal" in mask_name:
        n_keys = n_queries
    query = torch.randn(3, n_queries, D_MODEL)
    memory = torch.randn(3, n_keys, D_MODEL) if cross else query
    masks = _masks(3, n_queries, n_keys)[mask_name]

    expected, expected_weights = reference(query, memory, memory, need_weights=True, **masks)
    out, weights = ours(query, memory, memory, need_weights=True, **masks)
    fast, no_weights = ours(query, memory, memory, **masks)

    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(weights.mean(dim=1), expected_weights, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(fast, expected, atol=1e-5, rtol=1e-5)  # the fused SDPA path
    assert no_weights is None
    torch.testing.assert_close(weights.sum(-1), torch.ones(3, HEADS, n_queries))
    if "padding" in masks:
        assert weights[0, :, :, -2:].abs().max() == 0  # padded keys get exactly nothing
    if "causal" in mask_name:
        torch.testing.assert_close(  # the is_causal flag gives the same as the explicit mask
            ours(query, memory, memory, causal=True, need_weights=True)[0],
            ours(query, memory, memory, attn_mask=masks["attn_mask"], need_weights=True)[0],
        )


def test_causal_weights_are_exactly_zero_above_the_diagonal():
    torch.manual_seed(0)
    q, k, v = (torch.randn(2, 3, 8, 16) for _ in range(3))
    out, weights = scaled_dot_product_attention(q, k, v, causal=True)
    above = torch.ones(8, 8, dtype=torch.bool).triu(1)
    assert torch.all(weights[..., above] == 0)
    assert torch.all(weights[..., ~above] > 0)
    torch.testing.assert_close(weights.sum(-1), torch.ones(2, 3, 8))
    # The first query sees only the first key: its output is that key's value.
    torch.testing.assert_close(out[..., 0, :], v[..., 0, :])
    expected = torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True)
    torch.testing.assert_close(out, expected, atol=1e-5, rtol=1e-5)


def test_attention_is_softmax_of_scaled_scores():
    q = torch.tensor([[[1.0, 0.0], [0.0, 2.0]]])
    k = torch.tensor([[[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]])
    v = torch.eye(3)[None]
    out, weights = scaled_dot_product_attention(q, k, v)
    scores = torch.tensor([[1.0, 0.0, 1.0], [0.0, 2.0, 2.0]]) / math.sqrt(2)
    expected = scores.exp() / scores.exp().sum(-1, keepdim=True)
    torch.testing.assert_close(weights[0], expected)
    torch.testing.assert_close(out[0], expected)  # V = identity: outputs are the weights


def test_sinusoidal_positions_match_the_closed_form():
    d_model, length = 16, 50
    table = sinusoidal_positions(length, d_model)
    for pos in (0, 1, 7, 49):
        for i in range(d_model // 2):
            angle = pos / 10000 ** (2 * i / d_model)
            assert table[pos, 2 * i].item() == pytest.approx(math.sin(angle), abs=1e-6)
            assert table[pos, 2 * i + 1].item() == pytest.approx(math.cos(angle), abs=1e-6)
    x = torch.zeros(2, 10, d_model)
    torch.testing.assert_close(SinusoidalPositionalEncoding(d_model, 64)(x)[1], table[:10])
    with pytest.raises(ValueError, match="max_len=8"):
        SinusoidalPositionalEncoding(d_model, 8)(x)


def _tiny_transformer() -> Transformer:
    torch.manual_seed(0)
    return Transformer(11, 13, d_model=32, n_heads=4, d_ff=64, dropout=0.0).eval()


def test_decoder_is_causal_and_ignores_source_padding():
    model = _tiny_transformer()
    src = torch.tensor([[4, 5, 6, 2, 0, 0]])
    tgt = torch.tensor([[1, 7, 8, 9, 10]])
    logits = model(src, tgt)
    changed_future = tgt.clone()
    changed_future[0, 3:] = torch.tensor([3, 4])
    # Positions before the change see the same prefix: same logits; later ones differ.
    torch.testing.assert_close(model(src, changed_future)[:, :3], logits[:, :3])
    assert not torch.allclose(model(src, changed_future)[:, 3:], logits[:, 3:])
    # More padding on the source changes nothing.
    torch.testing.assert_close(model(torch.tensor([[4, 5, 6, 2, 0, 0, 0, 0]]), tgt), logits)


def test_attention_weights_have_one_row_per_query_and_sum_to_one():
    model = _tiny_transformer()
    src = torch.tensor([[4, 5, 6, 2, 0], [4, 2, 0, 0, 0]])
    tgt = torch.tensor([[1, 7, 8], [1, 9, 0]])
    weights = model.attention(src, tgt)
    assert weights.encoder.shape == (2, 2, 4, 5, 5)  # layers, batch, heads, queries, keys
    assert weights.decoder.shape == (2, 2, 4, 3, 3)
    assert weights.cross.shape == (2, 2, 4, 3, 5)
    for w in (weights.encoder, weights.decoder, weights.cross):
        torch.testing.assert_close(w.sum(-1), torch.ones(w.shape[:-1]))
    assert weights.cross[:, 1, :, :, 2:].abs().max() == 0  # padding of the second source
    assert weights.decoder[..., 0, 1:].abs().max() == 0  # the first target sees only <bos>


def test_greedy_decode_stops_at_eos_and_pads_after():
    model = _tiny_transformer()
    with torch.no_grad():  # make token 2 (eos) the argmax after the first step
        model.generator.bias.zero_()
        model.generator.weight.zero_()
        model.generator.bias[5] = 1.0
    out = model.greedy_decode(torch.tensor([[4, 5, 2]]), bos_id=1, eos_id=5, max_len=10)
    assert out.tolist() == [[5]]
