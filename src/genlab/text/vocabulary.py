"""A small word- or character-level vocabulary, for languages the model learns from scratch."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Sequence

import torch
from torch.nn.utils.rnn import pad_sequence

PAD, BOS, EOS, UNK = "<pad>", "<bos>", "<eos>", "<unk>"
SPECIALS = (PAD, BOS, EOS, UNK)
_WORD = re.compile(r"\w+|[^\w\s]")
# No space before these when words are joined back into text, and none after the joiners.
_NO_SPACE_BEFORE = {".", ",", "!", "?", ";", ":", ")", "'", "-"}
_NO_SPACE_AFTER = {"(", "'", "-"}


class Vocabulary:
    """Tokens with ids; <pad>, <bos>, <eos> and <unk> are always 0, 1, 2 and 3.

    `level="word"` splits text into words and punctuation marks, `level="char"` into characters
    (digits, say). `to_dict` / `from_dict` store it in a checkpoint.
    """

    pad_id, bos_id, eos_id, unk_id = range(4)

    def __init__(self, tokens: Sequence[str], level: str = "word"):
        if level not in ("word", "char"):
            raise ValueError(f"level={level!r}: use 'word' or 'char'")
        self.level = level
        self.tokens = list(SPECIALS) + [t for t in tokens if t not in SPECIALS]
        self.ids = {token: i for i, token in enumerate(self.tokens)}

    @classmethod
    def build(cls, texts: Iterable[str], level: str = "word", min_count: int = 1) -> Vocabulary:
        """Every token seen at least `min_count` times, most frequent first."""
        counts = Counter(token for text in texts for token in cls.split(text, level))
        return cls([t for t, n in counts.most_common() if n >= min_count], level)

    @staticmethod
    def split(text: str, level: str) -> list[str]:
        return list(text.strip()) if level == "char" else _WORD.findall(text)

    def __len__(self) -> int:
        return len(self.tokens)

    def unknown(self, text: str) -> list[str]:
        """The tokens of `text` that are not in the vocabulary (they encode as <unk>)."""
        return [t for t in self.split(text, self.level) if t not in self.ids]

    def encode(self, text: str) -> list[int]:
        """Ids of the text's tokens, then <eos>."""
        return [self.ids.get(t, self.unk_id) for t in self.split(text, self.level)] + [self.eos_id]

    def labels(self, ids: Iterable[int]) -> list[str]:
        """Token strings up to and including <eos>, for plots."""
        out = []
        for i in ids:
            if i == self.pad_id:
                continue
            out.append(self.tokens[i])
            if i == self.eos_id:
                break
        return out

    def decode(self, ids: Iterable[int]) -> str:
        """Text of the ids before <eos>, without specials."""
        words = [t for t in self.labels(ids) if t not in SPECIALS]
        if self.level == "char":
            return "".join(words)
        text = ""
        for i, word in enumerate(words):
            glued = i == 0 or word in _NO_SPACE_BEFORE or words[i - 1] in _NO_SPACE_AFTER
            text += word if glued else " " + word
        return text

    def to_dict(self) -> dict:
        return {"tokens": self.tokens, "level": self.level}

    @classmethod
    def from_dict(cls, state: dict) -> Vocabulary:
        return cls(state["tokens"], state["level"])


def padded(sequences: list[list[int]], pad_id: int) -> torch.Tensor:
    """Id lists as one (n, longest) tensor, padded on the right with `pad_id`."""
    rows = [torch.tensor(ids, dtype=torch.long) for ids in sequences]
    return pad_sequence(rows, batch_first=True, padding_value=pad_id)
