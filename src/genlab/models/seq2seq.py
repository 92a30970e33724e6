"""Translation with an encoder-decoder: genlab's Transformer, or a Hugging Face seq2seq model."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from functools import partial
from typing import Any

import torch
import torch.nn.functional as F

from genlab.errors import GenlabError
from genlab.models.attention_maps import AttentionMap
from genlab.models.base import GenlabModule, OptimizerFactory
from genlab.models.schedules import decayed_warmup_cosine
from genlab.models.seq2seq_backends import PretrainedBackend, Seq2SeqBackend, TransformerBackend
from genlab.nn.transformer import Transformer
from genlab.text.vocabulary import Vocabulary, padded

log = logging.getLogger(__name__)
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
    """`pretrained=None`: genlab's `Transformer`, sized by the fields here, built by `build` from
    the vocabularies of the training data and stored in every checkpoint. `pretrained=<hub name
    or directory>`: that `AutoModelForSeq2SeqLM` (MarianMT, T5, BART ...), fine-tuned.

    Per stage: `loss` (token cross-entropy), `acc` (token accuracy, teacher-forced); validation
    and test also decode greedily for `exact_match` (fraction of sentences decoded exactly
    right); test adds `bleu` (sacrebleu, corpus level; characters for character-level targets).
    `loss` and `acc` are means over all target tokens of the split, `exact_match` over its
    sentences, whatever the batching or the number of processes.
    """

    data_kind = "sentence pairs"

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
        self.save_hyperparameters(ignore=["optimizer"], logger=False)
        self.pretrained = pretrained
        self.label_smoothing = label_smoothing
        self.weight_decay, self.warmup_steps, self.min_lr_ratio = (
            weight_decay,
            warmup_steps,
            min_lr_ratio,
        )
        self.backend: Seq2SeqBackend | None = None
        self._test_texts: list[tuple[str, str]] = []
        if pretrained:
            self.backend = PretrainedBackend(pretrained, trust_remote_code)
            self.hf = self.backend.network

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        model, data = config.get("model") or {}, config.get("data") or {}
        if model.get("pretrained"):
            return []
        problems = []
        d_model, n_heads = model.get("d_model"), model.get("n_heads")
        if d_model and n_heads and d_model % n_heads:
            problems.append(f"model.d_model={d_model} must be divisible by model.n_heads={n_heads}")
        max_length, max_len = data.get("max_length"), model.get("max_len")
        if isinstance(max_length, int) and isinstance(max_len, int) and max_length > max_len:
            problems.append(
                f"data.max_length={max_length} is longer than model.max_len={max_len}, the "
                f"longest sequence the positional table covers: lower it or raise model.max_len"
            )
        return problems

    def build(self, source: Vocabulary | None, target: Vocabulary | None) -> None:
        """Create the Transformer for these vocabularies (once; later calls must match). A
        pretrained model has its tokenizer and takes none."""
        if self.pretrained or source is None or target is None:
            return
        if self.backend is not None:
            if [v.to_dict() for v in self.vocabularies] != [source.to_dict(), target.to_dict()]:
                raise GenlabError(
                    "this checkpoint was trained with other vocabularies than this data gives: "
                    "resume or test it with the run's own data config"
                )
            return
        sizes = {key: self.hparams[key] for key in _TRANSFORMER_SIZES}
        self.net = Transformer(len(source), len(target), pad_id=Vocabulary.pad_id, **sizes)
        self.backend = TransformerBackend(self.net, source, target)

    @property
    def vocabularies(self) -> tuple[Vocabulary, Vocabulary] | None:
        """The source and target vocabularies of genlab's Transformer (None: pretrained)."""
        return self.backend.vocabularies if isinstance(self.backend, TransformerBackend) else None

    def configure_model(self) -> None:
        if self.backend is None:
            raise GenlabError(
                "model=seq2seq without model.pretrained learns its vocabularies from the data: "
                "use data=translation (or a datamodule with source_vocab and target_vocab)"
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.vocabularies is not None:
            checkpoint["vocabularies"] = [v.to_dict() for v in self.vocabularies]

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if "vocabularies" in checkpoint:
            self.build(*(Vocabulary.from_dict(v) for v in checkpoint["vocabularies"]))

    # Training and evaluation

    def forward(self, source: torch.Tensor, decoder_input: torch.Tensor) -> torch.Tensor:
        """`model(source_ids, decoder_input_ids)`: target-token logits (N, T, target vocab)."""
        return self.backend.logits(source, decoder_input)

    def compute_losses(self, batch, stage: str) -> dict[str, torch.Tensor]:
        source, target = batch
        logits = self(source, shift_right(target, self.backend.start_id))
        pad_id = self.backend.pad_id
        loss = F.cross_entropy(
            logits.flatten(0, 1),
            target.flatten(),
            ignore_index=pad_id,
            label_smoothing=self.label_smoothing if stage == "train" else 0.0,
        )
        real = target != pad_id
        correct = (logits.argmax(-1) == target) & real
        losses = {"loss": loss, "acc": correct.sum() / real.sum()}
        if stage != "train":
            hypotheses, references = self.greedy_ids(source), self._until_eos(target)
            matches = [h == r for h, r in zip(hypotheses, references, strict=True)]
            exact = torch.tensor(matches, dtype=torch.float, device=source.device)
            losses["exact_match"] = exact.mean()
            if stage == "test":
                self._test_texts += [
                    (self.backend.decode(h), self.backend.decode(r))
                    for h, r in zip(hypotheses, references, strict=True)
                ]
        return losses

    def metric_weights(self, batch) -> dict[str, torch.Tensor]:
        tokens = (batch[1] != self.backend.pad_id).sum()
        return {"loss": tokens, "acc": tokens}  # means over every target token of the split

    def _until_eos(self, ids: torch.Tensor) -> list[list[int]]:
        """Each row's ids up to its first end-of-sequence token, without padding."""
        pad_id, eos_id = self.backend.pad_id, self.backend.eos_id
        rows = []
        for row in ids.tolist():
            row = [i for i in row if i != pad_id]
            rows.append(row[: row.index(eos_id) + 1] if eos_id in row else row)
        return rows

    @torch.no_grad()
    @torch.compiler.set_stance("force_eager")  # lengths change every token: no compile for each
    def greedy_ids(self, source: torch.Tensor) -> list[list[int]]:
        """Greedy translations of a padded batch, as id lists ending with end-of-sequence."""
        max_len = min(self.hparams.max_len - 1, 2 * source.size(1) + 10)
        return self._until_eos(self.backend.greedy(source, max_len))

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
            bleu = sacrebleu.corpus_bleu(
                list(hypotheses),
                [list(references)],
                tokenize="char" if self.backend.char_level else "13a",
            )
            self.log("test/bleu", bleu.score, sync_dist=False)
        super().on_test_epoch_end()

    def configure_optimizers(self):
        return decayed_warmup_cosine(
            self,
            self.backend.network,
            self.optimizer_factory,
            self.weight_decay,
            self.warmup_steps,
            self.min_lr_ratio,
        )

    # Using a trained model

    def encode(self, texts: Sequence[str]) -> torch.Tensor:
        """Source texts as a padded batch of ids on the model's device."""
        return padded(self.backend.encode(texts), self.backend.pad_id).to(self.device)

    def translate(self, texts: Sequence[str], strict: bool = False) -> list[str]:
        """Greedy translations of `texts`. Words the model never saw in training are read as
        unknown, and their translation is a guess: a warning names them (`strict`: an error)."""
        unknown = sorted(set(self.backend.unknown_tokens(texts)))
        if unknown:
            shown = ", ".join(repr(t) for t in unknown[:10]) + (" ..." if len(unknown) > 10 else "")
            message = (
                f"{len(unknown)} unknown word(s) in the input, read as <unk>: {shown}; the "
                f"model never saw them in training, so their translation is a guess"
            )
            if strict:
                raise GenlabError(message)
            log.warning(message)
        was_training = self.training
        self.eval()
        hypotheses = self.greedy_ids(self.encode(texts))
        self.train(was_training)
        return [self.backend.decode(h) for h in hypotheses]

    @torch.no_grad()
    @torch.compiler.set_stance("force_eager")  # one call of its own length: not worth compiling
    def attention_maps(self, text: str, target: str | None = None) -> list[AttentionMap]:
        """Encoder self-attention, decoder self-attention and cross-attention of one pair,
        teacher-forced on `target` (default: the model's own greedy translation of `text`).

        Rows are labelled with the target token predicted at that position."""
        if not text.strip():
            raise GenlabError("text= is empty: give some text to draw attention over")
        was_training = self.training
        self.eval()
        source = self.encode([text])
        target_ids = (
            self.greedy_ids(source)[0] if target is None else self.backend.encode_target(target)
        )
        target_ids = torch.tensor([target_ids], device=self.device)
        decoder_input = shift_right(target_ids, self.backend.start_id)
        encoder, decoder, cross = self.backend.attention(source, decoder_input)
        self.train(was_training)
        source_labels = self.backend.tokens(source[0].tolist(), target=False)
        predicted = self.backend.tokens(target_ids[0].tolist(), target=True)
        inputs = self.backend.tokens(decoder_input[0].tolist(), target=True)
        return [
            AttentionMap(
                "encoder", "encoder self-attention", encoder, source_labels, source_labels
            ),
            AttentionMap("decoder", "decoder self-attention", decoder, predicted, inputs),
            AttentionMap(
                "cross", "cross-attention (target over source)", cross, predicted, source_labels
            ),
        ]
