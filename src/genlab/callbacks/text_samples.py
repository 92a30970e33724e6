"""TensorBoard text each validation epoch: a language model's continuations of fixed prompts."""

from __future__ import annotations

import lightning as L

from genlab.callbacks.tensorboard import logging_step, tensorboard_logger


class TextSamples(L.Callback):
    """For models with `generate_text` and `sample_prompts`: one sampled continuation each."""

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        prompts = getattr(pl_module, "sample_prompts", None)
        logger = tensorboard_logger(trainer)
        if not prompts or logger is None:
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
