"""Translation with an encoder-decoder: genlab's Transformer, or a Hugging Face seq2seq model."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from genlab.attention_maps import AttentionMap, hf_attentions
from genlab.data.translation import padded
from genlab.data.vocabulary import Vocabulary
from genlab.errors import GenlabError
from genlab.models.base import GenlabModule, OptimizerFactory
from genlab.models.schedules import decayed_warmup_cosine
from genlab.nn.transformer import Transformer

_DEFAULT_OPTIMIZER = partial(torch.optim.AdamW, lr=5e-4, betas=(0.9, 0.98))
_TRANSFORMER_SIZES = (
    "d_model",
    "n_heads",
    "n_encoder_layers",
    "n_decoder_layers",
    "d_ff",
    "dropout",
    "max_len",
)


def shift_right(target: torch.Tensor, start_id: int) -> torch.Tensor:
    """Teacher forcing: the decoder reads <start> t1 .. t(n-1) and predicts t1 .. tn."""
    start = torch.full_like(target[:, :1], start_id)
    return torch.cat([start, target[:, :-1]], dim=1)


class Seq2Seq(GenlabModule):
    """`pretrained=None`: genlab's `Transformer`, sized by the fields here, its vocabularies taken
    from the datamodule when training starts and stored in every checkpoint. `pretrained=<hub
    name or directory>`: that `AutoModelForSeq2SeqLM` (MarianMT, T5, BART ...), fine-tuned.

    Per stage: `loss` (token cross-entropy), `acc` (token accuracy, teacher-forced); validation
    and test also decode greedily for `exact_match` (fraction of sentences decoded exactly
    right); test adds `bleu` (sacrebleu, corpus level; characters for character-level targets).
    `loss` and `acc` are means over all target tokens of the split, `exact_match` over its
    sentences, whatever the batching or the number of processes.
    """

    # Special ids of genlab's vocabularies; a pretrained model replaces them with its own.
    pad_id, start_id, eos_id = Vocabulary.pad_id, Vocabulary.bos_id, Vocabulary.eos_id

    def __init__(
        self,
        pretrained: str | None = None,
        d_model: int = 128,
        n_heads: int = 4,
        n_encoder_layers: int = 2,
        n_decoder_layers: int = 2,
        d_ff: int = 512,
        dropout: float = 0.1,
        max_len: int = 256,
        label_smoothing: float = 0.0,
        weight_decay: float = 0.01,
        warmup_steps: int = 200,
        min_lr_ratio: float = 0.05,
        trust_remote_code: bool = False,
        optimizer: OptimizerFactory | None = None,
    ):
        super().__init__(optimizer or _DEFAULT_OPTIMIZER)
        self.save_hyperparameters(ignore=["optimizer"])
        if d_model % n_heads:
            raise GenlabError(
                f"model.d_model={d_model} must be divisible by model.n_heads={n_heads}"
            )
        self.pretrained = pretrained
        self.label_smoothing = label_smoothing
        self.weight_decay, self.warmup_steps, self.min_lr_ratio = (
            weight_decay,
            warmup_steps,
            min_lr_ratio,
        )
        self.net: Transformer | None = None
        self.hf = None
        self.vocabularies: tuple[Vocabulary, Vocabulary] | None = None
        self._test_texts: list[tuple[str, str]] = []
        if pretrained:
            self._load_pretrained(pretrained, trust_remote_code)

    def _load_pretrained(self, name: str, trust_remote_code: bool) -> None:
        from transformers import AutoModelForSeq2SeqLM

        from genlab.tokenizer import pretrained_tokenizer

        self.tokenizer = pretrained_tokenizer(name, trust_remote_code)
        try:
            # from_pretrained returns eval mode; Lightning keeps modes, so dropout would be off.
            self.hf = AutoModelForSeq2SeqLM.from_pretrained(
                name, trust_remote_code=trust_remote_code
            ).train()
        except (OSError, ValueError) as err:
            raise GenlabError(
                f"cannot load model.pretrained={name} ({err}); it needs internet, a Hugging Face "
                f"cache or a local directory. Offline, use model.pretrained=null"
            ) from None
        config = self.hf.config
        self.pad_id, self.start_id = config.pad_token_id, config.decoder_start_token_id
        self.eos_id = config.eos_token_id

    def build(self, source: Vocabulary, target: Vocabulary) -> None:
        """Create the Transformer for these vocabularies (once; later calls must match)."""
        if self.vocabularies is not None:
            if [v.to_dict() for v in self.vocabularies] != [source.to_dict(), target.to_dict()]:
                raise GenlabError(
                    "this checkpoint was trained with other vocabularies than this data gives: "
                    "resume or test it with the run's own data config"
                )
            return
        sizes = {key: self.hparams[key] for key in _TRANSFORMER_SIZES}
        self.net = Transformer(len(source), len(target), pad_id=Vocabulary.pad_id, **sizes)
        self.vocabularies = (source, target)

    def configure_model(self) -> None:
        if self.hf is not None or self.net is not None:
            return
        datamodule = self.trainer.datamodule
        vocabularies = (
            getattr(datamodule, "source_vocab", None),
            getattr(datamodule, "target_vocab", None),
        )
        if None in vocabularies:
            raise GenlabError(
                "model=seq2seq without model.pretrained learns its own vocabularies: use "
                "data=translation (or a datamodule with source_vocab and target_vocab)"
            )
        self.build(*vocabularies)

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.vocabularies is not None:
            checkpoint["vocabularies"] = [v.to_dict() for v in self.vocabularies]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if "vocabularies" in checkpoint:
            self.build(*(Vocabulary.from_dict(v) for v in checkpoint["vocabularies"]))

    # Training and evaluation

    def _logits(self, source: torch.Tensor, decoder_input: torch.Tensor) -> torch.Tensor:
        if self.hf is None:
            return self.net(source, decoder_input)
        return self.hf(
            input_ids=source, attention_mask=source != self.pad_id, decoder_input_ids=decoder_input
        ).logits

    def compute_losses(self, batch, stage: str) -> dict[str, torch.Tensor]:
        source, target = batch
        logits = self._logits(source, shift_right(target, self.start_id))
        loss = F.cross_entropy(
            logits.flatten(0, 1),
            target.flatten(),
            ignore_index=self.pad_id,
            label_smoothing=self.label_smoothing if stage == "train" else 0.0,
        )
        real = target != self.pad_id
        correct = (logits.argmax(-1) == target) & real
        losses = {"loss": loss, "acc": correct.sum() / real.sum()}
        if stage != "train":
            hypotheses, references = self.greedy_ids(source), self._until_eos(target)
            matches = [h == r for h, r in zip(hypotheses, references, strict=True)]
            exact = torch.tensor(matches, dtype=torch.float, device=source.device)
            losses["exact_match"] = exact.mean()
            if stage == "test":
                self._test_texts += [
                    (self.decode(h), self.decode(r))
                    for h, r in zip(hypotheses, references, strict=True)
                ]
        return losses

    def metric_weights(self, batch) -> dict[str, torch.Tensor]:
        tokens = (batch[1] != self.pad_id).sum()
        return {"loss": tokens, "acc": tokens}  # means over every target token of the split

    def _until_eos(self, ids: torch.Tensor) -> list[list[int]]:
        """Each row's ids up to its first end-of-sequence token, without padding."""
        rows = []
        for row in ids.tolist():
            row = [i for i in row if i != self.pad_id]
            rows.append(row[: row.index(self.eos_id) + 1] if self.eos_id in row else row)
        return rows

    @torch.no_grad()
    def greedy_ids(self, source: torch.Tensor) -> list[list[int]]:
        """Greedy translations of a padded batch, as id lists ending with end-of-sequence."""
        max_len = min(self.hparams.max_len - 1, 2 * source.size(1) + 10)
        if self.hf is None:
            output = self.net.greedy_decode(source, self.start_id, self.eos_id, max_len)
        else:
            output = self.hf.generate(
                input_ids=source,
                attention_mask=source != self.pad_id,
                max_new_tokens=max_len,
                num_beams=1,
                do_sample=False,
            )[:, 1:]
        return self._until_eos(output)

    def on_test_epoch_start(self) -> None:
        super().on_test_epoch_start()
        self._test_texts = []

    def on_test_epoch_end(self) -> None:
        import sacrebleu

        pairs = self._test_texts
        if torch.distributed.is_available() and torch.distributed.is_initialized():
            gathered = [None] * torch.distributed.get_world_size()
            torch.distributed.all_gather_object(gathered, pairs)
            pairs = [pair for part in gathered for pair in part]
        if pairs:
            hypotheses, references = zip(*pairs, strict=True)
            char_level = self.vocabularies is not None and self.vocabularies[1].level == "char"
            bleu = sacrebleu.corpus_bleu(
                list(hypotheses), [list(references)], tokenize="char" if char_level else "13a"
            )
            self.log("test/bleu", bleu.score, sync_dist=False)
        super().on_test_epoch_end()

    def configure_optimizers(self):
        network = self.hf if self.hf is not None else self.net
        return decayed_warmup_cosine(
            self,
            network,
            self.optimizer_factory,
            self.weight_decay,
            self.warmup_steps,
            self.min_lr_ratio,
        )

    # Using a trained model

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Source texts as a padded batch of ids on the model's device."""
        if self.hf is not None:
            ids = self.tokenizer(list(texts))["input_ids"]
        else:
            ids = [self.vocabularies[0].encode(text) for text in texts]
        return padded(ids, self.pad_id).to(self.device)

    def decode(self, ids: Sequence[int]) -> str:
        if self.hf is not None:
            return self.tokenizer.decode(ids, skip_special_tokens=True)
        return self.vocabularies[1].decode(ids)

    def translate(self, texts: Sequence[str]) -> list[str]:
        """Greedy translations of `texts`."""
        was_training = self.training
        self.eval()
        hypotheses = self.greedy_ids(self.encode(texts))
        self.train(was_training)
        return [self.decode(h) for h in hypotheses]

    def _labels(self, ids: Sequence[int], side: int) -> list[str]:
        if self.hf is not None:
            return self.tokenizer.convert_ids_to_tokens(list(ids))
        return [self.vocabularies[side].tokens[i] for i in ids]

    @torch.no_grad()
    def attention_maps(self, text: str, target: str | None = None) -> list[AttentionMap]:
        """Encoder self-attention, decoder self-attention and cross-attention of one pair,
        teacher-forced on `target` (default: the model's own greedy translation of `text`).

        Rows are labelled with the target token predicted at that position."""
        was_training = self.training
        self.eval()
        source = self.encode([text])
        if target is None:
            target_ids = self.greedy_ids(source)[0]
        elif self.hf is not None:
            target_ids = self.tokenizer(text_target=[target])["input_ids"][0]
        else:
            target_ids = self.vocabularies[1].encode(target)
        target_ids = torch.tensor([target_ids], device=self.device)
        decoder_input = shift_right(target_ids, self.start_id)
        if self.hf is None:
            weights = self.net.attention(source, decoder_input)
            encoder, decoder, cross = (
                w[:, 0] for w in (weights.encoder, weights.decoder, weights.cross)
            )
        else:
            output = hf_attentions(self.hf, input_ids=source, decoder_input_ids=decoder_input)
            encoder, decoder, cross = (
                torch.stack(output[name])[:, 0]
                for name in ("encoder_attentions", "decoder_attentions", "cross_attentions")
            )
        self.train(was_training)
        source_labels = self._labels(source[0].tolist(), 0)
        predicted = self._labels(target_ids[0].tolist(), 1)
        inputs = self._labels(decoder_input[0].tolist(), 1)
        return [
            AttentionMap(
                "encoder", "encoder self-attention", encoder, source_labels, source_labels
            ),
            AttentionMap("decoder", "decoder self-attention", decoder, predicted, inputs),
            AttentionMap(
                "cross", "cross-attention (target over source)", cross, predicted, source_labels
            ),
        ]
