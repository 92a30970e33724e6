"""Attention weights of one example, as models return them (drawn by `genlab.callbacks.figures`)."""

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
