"""Figures of what models return: attention maps as a layer x head grid of heatmaps."""

from __future__ import annotations

import numpy as np

from genlab.models.attention_maps import AttentionMap


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


def figure_pixels(figure) -> np.ndarray:
    """A matplotlib Figure rendered as an RGB image (height x width x 3, uint8)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg

    canvas = FigureCanvasAgg(figure)
    canvas.draw()
    return np.asarray(canvas.buffer_rgba())[..., :3].copy()
