"""TensorBoard figures each validation epoch: the attention maps of one validation example."""

from __future__ import annotations

import lightning as L

from genlab.attention_maps import plot_attention
from genlab.callbacks.tensorboard import logging_step, tensorboard_logger


class AttentionFigures(L.Callback):
    """For models with `attention_maps` and datamodules with `example`: the layer x head grids
    of the validation example `index` under `attention/<kind>` (IMAGES tab), the same figures
    `genlab-attention` saves."""

    def __init__(self, index: int = 0):
        self.index = index

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = tensorboard_logger(trainer)
        example = getattr(trainer.datamodule, "example", None)
        if logger is None or example is None or not hasattr(pl_module, "attention_maps"):
            return
        for attention in pl_module.attention_maps(**example("val", index=self.index)):
            logger.experiment.add_figure(
                f"attention/{attention.name}", plot_attention(attention), logging_step(trainer)
            )
