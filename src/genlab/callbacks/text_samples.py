"""Text samples each validation epoch, to every logger: a language model's continuations of
fixed prompts."""

from __future__ import annotations

import lightning as L

from genlab.loggers.registry import logging_step, media_adapters
from genlab.models.abilities import GeneratesText


class TextSamples(L.Callback):
    """For language models (`GeneratesText`): one sampled continuation of each sample prompt."""

    def on_validation_epoch_end(self, trainer: L.Trainer, pl_module: L.LightningModule) -> None:
        adapters = media_adapters(trainer)
        if not adapters or not isinstance(pl_module, GeneratesText):
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
        rows = list(zip(prompts, texts, strict=True))
        for adapter in adapters:
            adapter.log_texts("samples", rows, logging_step(trainer))
