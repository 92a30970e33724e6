"""The two networks `Seq2Seq` trains, behind one interface: genlab's own Transformer with
vocabularies learnt from the data, or a pretrained Hugging Face encoder-decoder with its tokenizer.

A backend holds no parameters of its own: the network it drives is registered on the
LightningModule (as `net` or `hf`), so checkpoints keep their names.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import torch
from torch import nn

from genlab.errors import GenlabError
from genlab.models.attention_maps import hf_attentions
from genlab.nn.transformer import Transformer
from genlab.text.tokenizer import pretrained_tokenizer
from genlab.text.vocabulary import Vocabulary

# Encoder self-, decoder self- and cross-attention weights: (layers, heads, queries, keys) each.
Attentions = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class Seq2SeqBackend(Protocol):
    network: nn.Module
    pad_id: int
    start_id: int  # what the decoder reads first
    eos_id: int
    char_level: bool  # targets are characters (BLEU then counts characters)

    def logits(self, source: torch.Tensor, decoder_input: torch.Tensor) -> torch.Tensor: ...

    def greedy(self, source: torch.Tensor, max_len: int) -> torch.Tensor:
        """Greedy decoding of a padded batch: target ids, without the start token."""
        ...

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        """Source texts as id lists."""
        ...

    def encode_target(self, text: str) -> list[int]: ...

    def unknown_tokens(self, texts: Sequence[str]) -> list[str]:
        """Tokens of source `texts` the model has no id for (read as unknown)."""
        ...

    def decode(self, ids: Sequence[int]) -> str:
        """Target ids as text, without special tokens."""
        ...

    def tokens(self, ids: Sequence[int], target: bool) -> list[str]:
        """Each id's token string (source side, or target side), for plot labels."""
        ...

    def attention(self, source: torch.Tensor, decoder_input: torch.Tensor) -> Attentions: ...


class TransformerBackend:
    """genlab's `Transformer`, its word or character vocabularies built from the training pairs."""

    pad_id, start_id, eos_id = Vocabulary.pad_id, Vocabulary.bos_id, Vocabulary.eos_id

    def __init__(self, net: Transformer, source: Vocabulary, target: Vocabulary):
        self.network = net
        self.vocabularies = (source, target)
        self.char_level = target.level == "char"

    def logits(self, source: torch.Tensor, decoder_input: torch.Tensor) -> torch.Tensor:
        return self.network(source, decoder_input)

    def greedy(self, source: torch.Tensor, max_len: int) -> torch.Tensor:
        return self.network.greedy_decode(source, self.start_id, self.eos_id, max_len)

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return [self.vocabularies[0].encode(text) for text in texts]

    def encode_target(self, text: str) -> list[int]:
        return self.vocabularies[1].encode(text)

    def unknown_tokens(self, texts: Sequence[str]) -> list[str]:
        return [token for text in texts for token in self.vocabularies[0].unknown(text)]

    def decode(self, ids: Sequence[int]) -> str:
        return self.vocabularies[1].decode(ids)

    def tokens(self, ids: Sequence[int], target: bool) -> list[str]:
        return [self.vocabularies[int(target)].tokens[i] for i in ids]

    def attention(self, source: torch.Tensor, decoder_input: torch.Tensor) -> Attentions:
        weights = self.network.attention(source, decoder_input)
        return weights.encoder[:, 0], weights.decoder[:, 0], weights.cross[:, 0]


class PretrainedBackend:
    """A Hugging Face `AutoModelForSeq2SeqLM` (MarianMT, T5, BART ...) and its own tokenizer."""

    char_level = False

    def __init__(self, name: str, trust_remote_code: bool = False):
        from transformers import AutoModelForSeq2SeqLM

        self.tokenizer = pretrained_tokenizer(name, trust_remote_code)
        try:
            # from_pretrained returns eval mode; Lightning keeps modes, so dropout would be off.
            self.network = AutoModelForSeq2SeqLM.from_pretrained(
                name, trust_remote_code=trust_remote_code
            ).train()
        except (OSError, ValueError) as err:
            raise GenlabError(
                f"cannot load model.pretrained={name} ({err}); it needs internet, a Hugging Face "
                f"cache or a local directory. Offline, use model.pretrained=null"
            ) from None
        config = self.network.config
        self.pad_id, self.start_id = config.pad_token_id, config.decoder_start_token_id
        self.eos_id = config.eos_token_id

    def logits(self, source: torch.Tensor, decoder_input: torch.Tensor) -> torch.Tensor:
        mask = source != self.pad_id
        return self.network(
            input_ids=source, attention_mask=mask, decoder_input_ids=decoder_input
        ).logits

    def greedy(self, source: torch.Tensor, max_len: int) -> torch.Tensor:
        return self.network.generate(
            input_ids=source,
            attention_mask=source != self.pad_id,
            max_new_tokens=max_len,
            num_beams=1,
            do_sample=False,
        )[:, 1:]

    def encode(self, texts: Sequence[str]) -> list[list[int]]:
        return self.tokenizer(list(texts))["input_ids"]

    def encode_target(self, text: str) -> list[int]:
        return self.tokenizer(text_target=[text])["input_ids"][0]

    def unknown_tokens(self, texts: Sequence[str]) -> list[str]:
        unk = self.tokenizer.unk_token_id
        if unk is None:
            return []
        pieces = self.tokenizer(list(texts), add_special_tokens=False)["input_ids"]
        return [text for text, ids in zip(texts, pieces, strict=True) if unk in ids]

    def decode(self, ids: Sequence[int]) -> str:
        return self.tokenizer.decode(ids, skip_special_tokens=True)

    def tokens(self, ids: Sequence[int], target: bool) -> list[str]:
        return self.tokenizer.convert_ids_to_tokens(list(ids))

    def attention(self, source: torch.Tensor, decoder_input: torch.Tensor) -> Attentions:
        output = hf_attentions(self.network, input_ids=source, decoder_input_ids=decoder_input)
        encoder, decoder, cross = (
            torch.stack(output[name])[:, 0]
            for name in ("encoder_attentions", "decoder_attentions", "cross_attentions")
        )
        return encoder, decoder, cross
