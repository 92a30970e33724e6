"""What a model can do, declared once and checked with `isinstance`.

Callbacks, evaluators, the CLIs and the run code ask for these abilities; models provide them by
having the members (no base class to inherit). Each default is stated in one place: here when the
ability is optional, in `GenlabModule` for what every genlab model has.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import torch

from genlab.models.attention_maps import AttentionMap


@runtime_checkable
class ImageModel(Protocol):
    """Takes and/or makes images of `input_shape` (C, H, W) with pixels in `value_range`."""

    input_shape: tuple[int, ...]
    value_range: tuple[float, float]


@runtime_checkable
class Reconstructs(Protocol):
    def reconstruct(self, images: torch.Tensor) -> torch.Tensor:
        """Images in, their reconstructions (same shape and range) out."""
        ...


@runtime_checkable
class SamplesImages(Protocol):
    value_range: tuple[float, float]

    def sample(self, n: int, generator: torch.Generator | None = None) -> torch.Tensor:
        """n new images in `value_range`, noise drawn from `generator` (on the CPU) if given."""
        ...


@runtime_checkable
class DecodesLatents(Protocol):
    """A latent space that can be walked: `decode` maps (N, latent_dim) codes to images."""

    latent_dim: int

    def decode(self, z: torch.Tensor) -> torch.Tensor: ...


@runtime_checkable
class GeneratesText(Protocol):
    """A language model: continues prompts; `sample_prompts` are shown while it trains."""

    context_length: int
    sample_prompts: list[str]
    sample_max_new_tokens: int

    def generate_text(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = 40,
        seed: int = 0,
        full_text: bool = False,
        **generation: Any,
    ) -> list[str]: ...


@runtime_checkable
class CountsTokens(Protocol):
    """A token model whose training arithmetic is known: what throughput and model FLOPs
    utilization (MFU) are computed from."""

    def tokens_in(self, batch: Any) -> int:
        """The tokens a training batch predicts."""
        ...

    def flops_per_token(self) -> float:
        """Floating-point operations of one training token, forward and backward."""
        ...


@runtime_checkable
class Translates(Protocol):
    def translate(self, texts: Sequence[str], strict: bool = False) -> list[str]:
        """Greedy translations of `texts`; `strict`: refuse words the model does not know."""
        ...


@runtime_checkable
class DrawsAttention(Protocol):
    def attention_maps(self, text: str, target: str | None = None) -> list[AttentionMap]:
        """The attention weights of one input (and, for encoder-decoders, its `target`)."""
        ...


@runtime_checkable
class ExportsPretrained(Protocol):
    def export_pretrained(self, out: Path) -> None:
        """Write the model and its tokenizer as a directory that plain Hugging Face loads."""
        ...


@runtime_checkable
class ExportsGenerator(Protocol):
    """An image model whose sampling network stands alone (a GAN's generator, a VAE's decoder):
    noise z ~ N(0, I) of shape (N, latent_dim) in, images (N, *input_shape) in `value_range` out."""

    latent_dim: int
    input_shape: tuple[int, ...]
    value_range: tuple[float, float]

    def exported_generator(self) -> tuple[torch.nn.Module, dict[str, Any]]:
        """The network that samples and its constructor's keyword arguments (JSON values), so
        plain PyTorch rebuilds it from its class and loads its state dict."""
        ...


@runtime_checkable
class LearnsVocabularies(Protocol):
    """A model whose vocabularies come from the training data (before it can be built)."""

    def build(self, source: Any, target: Any) -> None: ...


@runtime_checkable
class LearnsTokenizer(Protocol):
    """A language model built on its training data's tokenizer (a character vocabulary read
    from the corpus), which its checkpoints then carry. Other tokenizers it has from its
    config; `build_on` then checks that the data's has the same vocabulary."""

    def build_on(self, tokenizer: Any) -> None: ...
