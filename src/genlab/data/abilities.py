"""What a datamodule can offer beyond batches, declared once and checked with `isinstance`.

Callbacks, evaluators and the run code ask for these; datamodules provide them by having the
members (no base class to inherit). Check them after `setup`: some members read loaded data.
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from torch.utils.data import DataLoader

from genlab.text.vocabulary import Vocabulary


@runtime_checkable
class LabelledImages(Protocol):
    """Images with class labels: what the FID/KID feature classifier learns from."""

    num_classes: int

    def loader(self, split: str, shuffle: bool) -> DataLoader:
        """All of one split ("train", "val", "test"), on this process (not one rank's share)."""
        ...

    def identity(self) -> str:
        """Which data this is (kind, files, split): what caches derived from it are keyed by."""
        ...


@runtime_checkable
class HasExamples(Protocol):
    """Single examples as text, for attention maps: {"text": ...} and, for pairs, "target"."""

    def example(self, split: str = "test", index: int = 0) -> dict[str, str]: ...


@runtime_checkable
class HasVocabularies(Protocol):
    """Source and target vocabularies built from the training split (a model learns them)."""

    source_vocab: Vocabulary | None
    target_vocab: Vocabulary | None


@runtime_checkable
class HasTokenizer(Protocol):
    """Text tokenized by a Hugging Face tokenizer, which a language model can be built on."""

    def text_tokenizer(self) -> Any:
        """The tokenizer (a character vocabulary is read from the text on first use)."""
        ...
