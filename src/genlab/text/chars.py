"""A character-level tokenizer (nanoGPT's shakespeare_char): one token per character of the
training text, plus the end-of-text token, as a Hugging Face fast tokenizer.

The characters get ids 0..n-1 in sorted order, as nanoGPT's `prepare.py` numbers them, and the
end-of-text token (which joins files, and pads) is id n. It is a `PreTrainedTokenizerFast` on a
`tokenizers.Tokenizer`: a word-level model over single characters, a pre-tokenizer that cuts
the text into characters and a decoder that joins them without spaces, so `save_pretrained`
writes a directory that plain `transformers.AutoTokenizer.from_pretrained` loads.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

import numpy as np

from genlab.errors import GenlabError

END_OF_TEXT = "<|endoftext|>"
# Unicode code points: a lookup table over all of them maps text to ids with numpy.
_CODE_POINTS = 0x110000


def char_tokenizer(characters: Sequence[str]):
    """The tokenizer of these characters (ids in the order given; use `sorted`)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    if END_OF_TEXT in characters or any(len(c) != 1 for c in characters):
        raise ValueError("a character vocabulary holds single characters only")
    vocab = {c: i for i, c in enumerate(characters)}
    vocab[END_OF_TEXT] = len(vocab)
    backend = Tokenizer(models.WordLevel(vocab, unk_token=None))
    # Every character is a piece of its own (newlines too: [\s\S], not ".").
    backend.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    backend.decoder = decoders.Fuse()
    backend.add_special_tokens([END_OF_TEXT])
    return PreTrainedTokenizerFast(
        tokenizer_object=backend,
        eos_token=END_OF_TEXT,
        bos_token=END_OF_TEXT,
        pad_token=END_OF_TEXT,
        clean_up_tokenization_spaces=False,
    )


def characters_of(tokenizer) -> list[str]:
    """The characters of a character tokenizer, in id order (what a checkpoint stores)."""
    by_id = sorted(tokenizer.get_vocab().items(), key=lambda item: item[1])
    return [token for token, _ in by_id if token != END_OF_TEXT]


def unknown_characters(tokenizer, texts: Iterable[str]) -> list[str]:
    """The characters of `texts` that a character tokenizer has no id for, sorted."""
    vocab = tokenizer.get_vocab()
    return sorted({c for text in texts for c in text.replace(END_OF_TEXT, "") if c not in vocab})


def refuse_unknown_characters(tokenizer, texts: Iterable[str], what: str) -> None:
    """One GenlabError line naming the characters a character-level model never saw."""
    unknown = unknown_characters(tokenizer, texts)
    if unknown:
        shown = " ".join(repr(c) for c in unknown[:20]) + (" ..." if len(unknown) > 20 else "")
        raise GenlabError(
            f"{what} has {len(unknown)} character(s) this character-level model has no token "
            f"for: {shown}; it knows only the {len(tokenizer) - 1} characters of its training "
            f"text"
        )


class CharacterSet:
    """The characters seen in text chunks, collected with numpy (a pass over a large corpus)."""

    def __init__(self):
        self.seen = np.zeros(_CODE_POINTS, dtype=bool)

    def add(self, text: str) -> None:
        self.seen[_code_points(text)] = True

    def sorted(self) -> list[str]:
        return [chr(c) for c in np.flatnonzero(self.seen)]


class CharEncoder:
    """Text to the ids of `char_tokenizer(characters)`, vectorized: a lookup table indexed by
    code point (the same ids as the tokenizer, at numpy speed, for tokenizing a corpus)."""

    def __init__(self, characters: Sequence[str], dtype: type = np.uint16):
        self.ids = {c: i for i, c in enumerate(characters)}
        self.end_of_text = len(characters)
        # Characters outside the vocabulary map to end_of_text + 1, caught below.
        self.table = np.full(_CODE_POINTS, self.end_of_text + 1, dtype=np.uint32)
        for c, i in self.ids.items():
            self.table[ord(c)] = i
        self.dtype = dtype

    def __call__(self, text: str) -> np.ndarray:
        if END_OF_TEXT in text:  # the special token, written out in the text
            pieces = text.split(END_OF_TEXT)
            end = np.array([self.end_of_text], dtype=self.dtype)
            parts = [p for piece in pieces for p in (self(piece), end)][:-1]
            return np.concatenate(parts)
        ids = self.table[_code_points(text)]
        if ids.size and ids.max() > self.end_of_text:
            missing = sorted({c for c in text if c not in self.ids})
            raise ValueError(f"characters outside the vocabulary: {missing[:10]}")
        return ids.astype(self.dtype)


def _code_points(text: str) -> np.ndarray:
    return np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
