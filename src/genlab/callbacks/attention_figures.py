"""TensorBoard figures each validation epoch: the attention maps of one validation example."""

from __future__ import annotations

import lightning as L

from genlab.callbacks.figures import plot_attention
from genlab.callbacks.tensorboard import logging_step, tensorboard_logger
from genlab.data.abilities import HasExamples
from genlab.models.abilities import DrawsAttention


class AttentionFigures(L.Callback):
    """For models that draw attention and data with examples: the layer x head grids of the
    validation example `index` under `attention/<kind>` (IMAGES tab), the same figures
    `genlab-attention` saves."""

    def __init__(self, index: int = 0):
        self.index = index

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = tensorboard_logger(trainer)
        data = trainer.datamodule
        if logger is None or not isinstance(data, HasExamples):
            return
        if not isinstance(pl_module, DrawsAttention):
            return
        for attention in pl_module.attention_maps(**data.example("val", index=self.index)):
            logger.experiment.add_figure(
                f"attention/{attention.name}", plot_attention(attention), logging_step(trainer)
            )
