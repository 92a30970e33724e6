"""Attention figures each validation epoch, to every logger: the maps of one validation example."""

from __future__ import annotations

import lightning as L

from genlab.callbacks.figures import figure_pixels, plot_attention
from genlab.data.abilities import HasExamples
from genlab.loggers.registry import logging_step, media_adapters
from genlab.models.abilities import DrawsAttention


class AttentionFigures(L.Callback):
    """For models that draw attention and data with examples: the layer x head grids of the
    validation example `index` as images `attention/<kind>`, the same figures
    `genlab-attention` saves."""

    def __init__(self, index: int = 0):
        self.index = index

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        adapters = media_adapters(trainer)
        data = trainer.datamodule
        if not adapters or not isinstance(data, HasExamples):
            return
        if not isinstance(pl_module, DrawsAttention):
            return
        for attention in pl_module.attention_maps(**data.example("val", index=self.index)):
            pixels = figure_pixels(plot_attention(attention))
            for adapter in adapters:
                adapter.log_image(f"attention/{attention.name}", pixels, logging_step(trainer))
