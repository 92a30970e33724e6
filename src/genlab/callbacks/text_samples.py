"""TensorBoard text each validation epoch: a language model's continuations of fixed prompts."""

from __future__ import annotations

import lightning as L

from genlab.callbacks.tensorboard import logging_step, tensorboard_logger
from genlab.models.abilities import GeneratesText


class TextSamples(L.Callback):
    """For language models (`GeneratesText`): one sampled continuation of each sample prompt."""

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        logger = tensorboard_logger(trainer)
        if logger is None or not isinstance(pl_module, GeneratesText):
            return
        prompts = pl_module.sample_prompts
        if not prompts:
            return
        # Seeded top-k sampling: greedy decoding of a young model repeats one token.
        texts = pl_module.generate_text(
            prompts,
            pl_module.sample_max_new_tokens,
            seed=0,
            do_sample=True,
            top_k=40,
            temperature=0.8,
        )
        for i, (prompt, text) in enumerate(zip(prompts, texts, strict=True)):
            logger.experiment.add_text(f"samples/{i}", f"**{prompt}**{text}", logging_step(trainer))
