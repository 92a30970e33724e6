"""Attention weights as pictures: a layer x head grid of heatmaps with token labels on both axes."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch

from genlab.errors import GenlabError

_ENCODER_DECODER = ("encoder_attentions", "decoder_attentions", "cross_attentions")


@dataclass
class AttentionMap:
    """One kind of attention of one example: weights (layers, heads, queries, keys)."""

    name: str  # short, for file names and TensorBoard tags: self, encoder, decoder, cross
    title: str
    weights: torch.Tensor
    query_labels: list[str]
    key_labels: list[str]

    def __post_init__(self) -> None:
        shape = tuple(self.weights.shape)
        if len(shape) != 4 or shape[2:] != (len(self.query_labels), len(self.key_labels)):
            raise ValueError(
                f"{self.name}: weights of shape {shape} do not match "
                f"{len(self.query_labels)} query and {len(self.key_labels)} key labels"
            )


def hf_attentions(model, **inputs: Any) -> dict[str, tuple[torch.Tensor, ...]]:
    """Run a Hugging Face model with `output_attentions=True` under eager attention.

    In transformers 5 the default SDPA attention returns no weights (empty tuples, or None,
    with at most a log line), so the model is switched to "eager" for this one pass and back;
    if weights still come back missing, this fails rather than plotting nothing.
    """
    previous = model.config._attn_implementation
    if previous != "eager":
        model.set_attn_implementation("eager")
    try:
        output = model(**inputs, output_attentions=True)
    finally:
        if previous != "eager":
            model.set_attn_implementation(previous)
    expected = _ENCODER_DECODER if model.config.is_encoder_decoder else ("attentions",)
    found = {name: getattr(output, name, None) for name in expected}
    if any(not weights or None in weights for weights in found.values()):
        raise GenlabError(
            f"{type(model).__name__} returned no attention weights (attn_implementation="
            f"{model.config._attn_implementation}); load it with attn_implementation='eager'"
        )
    return found


def _label(token: str) -> str:
    """Whitespace made visible: GPT-2's "Ġ" and SentencePiece's "▁" become "·"."""
    return token.replace("Ġ", "·").replace("▁", "·").replace("Ċ", "\\n").replace("\n", "\\n")


def plot_attention(attention: AttentionMap):
    """A matplotlib Figure: one heatmap per (layer, head), rows = queries, columns = keys."""
    from matplotlib.figure import Figure

    layers, heads, n_queries, n_keys = attention.weights.shape
    side = 1.0 + 0.18 * max(n_queries, n_keys, 8)
    figure = Figure(figsize=(side * heads, side * layers + 0.6), layout="constrained")
    axes = figure.subplots(layers, heads, squeeze=False)
    weights = attention.weights.detach().float().cpu()
    font = 7 if max(n_queries, n_keys) <= 40 else 5
    queries = [_label(t) for t in attention.query_labels]
    keys = [_label(t) for t in attention.key_labels]
    for layer in range(layers):
        for head in range(heads):
            ax = axes[layer, head]
            ax.imshow(weights[layer, head], cmap="viridis", vmin=0.0, vmax=1.0, aspect="auto")
            ax.set_title(f"layer {layer} head {head}", fontsize=8)
            ax.set_xticks(range(n_keys), keys, rotation=90, fontsize=font)
            ax.set_yticks(range(n_queries), queries, fontsize=font)
    figure.suptitle(attention.title)
    return figure
