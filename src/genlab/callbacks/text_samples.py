"""TensorBoard text each validation epoch: a language model's continuations of fixed prompts."""

from __future__ import annotations

import lightning as L
from lightning.pytorch.loggers import TensorBoardLogger


class TextSamples(L.Callback):
    """For models with `generate_text` and `sample_prompts`: one sampled continuation each."""

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        prompts = getattr(pl_module, "sample_prompts", None)
        logger = next((lg for lg in trainer.loggers if isinstance(lg, TensorBoardLogger)), None)
        if not prompts or logger is None or trainer.sanity_checking or not trainer.is_global_zero:
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
            logger.experiment.add_text(f"samples/{i}", f"**{prompt}**{text}", trainer.global_step)
