"""GPT-2 language modelling around Hugging Face's `GPT2LMHeadModel`: fine-tune or from scratch."""

from __future__ import annotations

from collections.abc import Sequence
from functools import partial
from pathlib import Path
from typing import Any

import torch
import torch.nn.functional as F

from genlab.errors import GenlabError
from genlab.models.attention_maps import AttentionMap, hf_attentions
from genlab.models.base import GenlabModule, OptimizerFactory
from genlab.models.schedules import decayed_warmup_cosine
from genlab.text.chars import char_tokenizer, characters_of, refuse_unknown_characters
from genlab.text.tokenizer import GPT2_BPE, gpt2_tokenizer, is_char_level, load_tokenizer

_DEFAULT_OPTIMIZER = partial(torch.optim.AdamW, lr=3e-4, betas=(0.9, 0.95))


class GPT2(GenlabModule):
    """`pretrained`: a hub name or local directory for `from_pretrained`, with that model's
    tokenizer; None builds a GPT-2 from the size fields and trains it from scratch (offline)
    with `tokenizer`: `gpt2` (GPT-2's BPE), `char` (the characters of its training text: the
    network is built by `build_on` with the data's tokenizer, which every checkpoint then
    carries), or a pretrained tokenizer's name or directory.

    `activation` and `bias` shape a model built here: nanoGPT's GPT is `activation="gelu"`
    (exact GELU), `bias=False`.

    Batches are (inputs, targets), the targets one token ahead of the inputs. Logs `loss`
    (mean cross-entropy per token, nats) and `ppl` = exp(loss) per stage. AdamW decays matrices
    only (not biases or LayerNorm weights); the learning rate warms up linearly for
    `warmup_steps`, then follows a cosine to `min_lr_ratio` of its peak at the last step
    (`trainer.estimated_stepping_batches`, so `accumulate_grad_batches` is accounted for).
    """

    data_kind = "token blocks"

    def __init__(
        self,
        pretrained: str | None = None,
        tokenizer: str | None = GPT2_BPE,
        n_layer: int = 4,
        n_head: int = 4,
        n_embd: int = 128,
        n_positions: int = 256,
        dropout: float = 0.1,
        activation: str = "gelu_new",
        bias: bool = True,
        weight_decay: float = 0.1,
        warmup_steps: int = 100,
        min_lr_ratio: float = 0.1,
        gradient_checkpointing: bool = False,
        trust_remote_code: bool = False,
        sample_prompts: Sequence[str] = (),
        sample_max_new_tokens: int = 40,
        optimizer: OptimizerFactory | None = None,
    ):
        super().__init__(optimizer or _DEFAULT_OPTIMIZER)
        self.save_hyperparameters(ignore=["optimizer"], logger=False)
        self.pretrained = pretrained
        self.char_level = not pretrained and is_char_level(tokenizer)
        # Both set when the network is made: here, or by `build_on` for a character model.
        self.tokenizer: Any = None
        self.model: Any = None
        if pretrained:
            network = _load_pretrained(pretrained, trust_remote_code)
            self._use(gpt2_tokenizer(pretrained, trust_remote_code), network)
        elif not self.char_level:
            own = load_tokenizer(tokenizer, trust_remote_code)
            self._use(own, self._new_network(own))
        self.weight_decay = weight_decay
        self.warmup_steps = warmup_steps
        self.min_lr_ratio = min_lr_ratio
        self.sample_prompts = list(sample_prompts)
        self.sample_max_new_tokens = sample_max_new_tokens

    @classmethod
    def config_problems(cls, config: dict[str, Any]) -> list[str]:
        """The head count must divide the width, and the data's blocks must fit the context."""
        model, data = config.get("model") or {}, config.get("data") or {}
        problems = []
        pretrained = model.get("pretrained")
        n_embd, n_head = model.get("n_embd"), model.get("n_head")
        if not pretrained and n_embd and n_head and n_embd % n_head:
            problems.append(f"model.n_embd={n_embd} must be divisible by model.n_head={n_head}")
        tokenizer = model.get("tokenizer")
        if pretrained and tokenizer not in (None, pretrained):
            problems.append(
                f"data.tokenizer={tokenizer}: model.pretrained={pretrained} has its own "
                f"tokenizer; leave data.tokenizer unset (it follows model.pretrained)"
            )
        elif "tokenizer" in data and tokenizer != data["tokenizer"]:
            problems.append(
                f"model.tokenizer={tokenizer} differs from data.tokenizer={data['tokenizer']}: "
                f"leave model.tokenizer unset (it follows data.tokenizer)"
            )
        context, key = _context_length(model)
        block_size = data.get("block_size")
        if context and isinstance(block_size, int) and block_size > context:
            problems.append(
                f"data.block_size={block_size} is larger than the model's context of {context} "
                f"tokens ({key}): lower it or enlarge the model"
            )
        return problems

    def _new_network(self, tokenizer):
        """A GPT-2 of the configured size for this tokenizer's vocabulary, freshly initialized."""
        from transformers import GPT2Config, GPT2LMHeadModel

        sizes = self.hparams
        config = GPT2Config(
            vocab_size=len(tokenizer),
            n_positions=sizes.n_positions,
            n_embd=sizes.n_embd,
            n_layer=sizes.n_layer,
            n_head=sizes.n_head,
            resid_pdrop=sizes.dropout,
            embd_pdrop=sizes.dropout,
            attn_pdrop=sizes.dropout,
            activation_function=sizes.activation,
            bos_token_id=tokenizer.eos_token_id,
            eos_token_id=tokenizer.eos_token_id,
        )
        network = GPT2LMHeadModel(config)
        if not sizes.bias:
            _without_biases(network)
        return network

    def _use(self, tokenizer, network) -> None:
        network.loss_type = "ForCausalLM"  # the default; saying so silences a warning
        if self.hparams.gradient_checkpointing:
            network.gradient_checkpointing_enable()
        self.tokenizer, self.model = tokenizer, network

    def build_on(self, tokenizer) -> None:
        """A character model: make the network for the data's characters (once; a later call,
        from a checkpoint, must bring the same ones). A model that has its tokenizer already
        checks that the data's has the same vocabulary."""
        if self.model is None:
            refuse_unknown_characters(tokenizer, self.sample_prompts, "model.sample_prompts")
            self._use(tokenizer, self._new_network(tokenizer))
            return
        if tokenizer is self.tokenizer or tokenizer.get_vocab() == self.tokenizer.get_vocab():
            return
        if self.char_level:
            raise GenlabError(
                "this checkpoint was trained on other characters than this data has: resume or "
                "test it with the run's own data config"
            )
        raise GenlabError(
            "the data is tokenized with another vocabulary than the model's: leave "
            "model.tokenizer unset (it follows data.tokenizer)"
        )

    def configure_model(self) -> None:
        if self.model is None:
            raise GenlabError(
                "model.tokenizer=char builds the model on the characters of its training text: "
                "train it with data=text data.tokenizer=char"
            )

    def on_save_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_save_checkpoint(checkpoint)
        if self.char_level:
            checkpoint["characters"] = characters_of(self.tokenizer)

    def on_load_checkpoint(self, checkpoint: dict[str, Any]) -> None:
        super().on_load_checkpoint(checkpoint)
        if self.char_level and "characters" in checkpoint:
            self.build_on(char_tokenizer(checkpoint["characters"]))

    @property
    def context_length(self) -> int:
        return self.model.config.n_positions if self.model is not None else self.hparams.n_positions

    def forward(
        self, input_ids: torch.Tensor, attention_mask: torch.Tensor | None = None
    ) -> torch.Tensor:
        """`model(input_ids)`: next-token logits (N, T, vocab_size)."""
        return self.model(input_ids=input_ids, attention_mask=attention_mask).logits

    def compute_losses(self, batch, stage: str) -> dict[str, torch.Tensor]:
        """Cross-entropy of every position's prediction against its target (one token ahead)."""
        inputs, targets = batch
        logits = self.model(input_ids=inputs).logits
        return {"loss": F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())}

    def tokens_in(self, batch) -> int:
        return batch[1].numel()

    def flops_per_token(self) -> float:
        return gpt2_flops_per_token(self.model)

    def derived_metrics(self, means: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {"ppl": torch.exp(means["loss"])}

    def configure_optimizers(self):
        return decayed_warmup_cosine(
            self,
            self.model,
            self.optimizer_factory,
            self.weight_decay,
            self.warmup_steps,
            self.min_lr_ratio,
        )

    @torch.no_grad()
    @torch.compiler.set_stance("force_eager")  # lengths change every token: no compile for each
    def generate_text(
        self,
        prompts: Sequence[str],
        max_new_tokens: int = 40,
        seed: int = 0,
        full_text: bool = False,
        **generation,
    ) -> list[str]:
        """Each prompt's continuation (batched, left-padded, with attention mask and KV cache).

        `generation` takes `model.generate` options: do_sample, temperature, top_k, top_p,
        repetition_penalty, num_return_sequences. Returns one text per returned sequence.
        A continuation longer than the context is made in rounds, each continuing the last
        half of the context (nanoGPT's sampling crops to the context for every token).
        """
        tokenizer = self.tokenizer
        if self.char_level:
            refuse_unknown_characters(tokenizer, prompts, "the prompt")
        tokenizer.padding_side = "left"
        encoded = tokenizer(list(prompts), return_tensors="pt", padding=True).to(self.device)
        # A prompt keeps its end: what leaves room for the continuation within the context,
        # at least half the context (with left padding, the last columns).
        room = max(self.context_length // 2, self.context_length - max_new_tokens)
        ids, mask = encoded["input_ids"][:, -room:], encoded["attention_mask"][:, -room:]
        was_training = self.model.training
        self.model.eval()
        # Seeded sampling that leaves the training run's random state untouched.
        devices = [self.device] if self.device.type == "cuda" else []
        with torch.random.fork_rng(devices=devices):
            torch.manual_seed(seed)
            output = self._continued(ids, mask, max_new_tokens, generation)
        self.model.train(was_training)
        start = 0 if full_text else ids.shape[1]
        return tokenizer.batch_decode(output[:, start:], skip_special_tokens=True)

    def export_pretrained(self, out: Path) -> None:
        """The network and tokenizer as a directory `from_pretrained` loads."""
        self.model.save_pretrained(out)
        self.tokenizer.save_pretrained(out)

    def _continued(self, ids, mask, max_new_tokens: int, generation: dict[str, Any]):
        """`ids` followed by `max_new_tokens` generated ones: one `generate` call within the
        context, else rounds on the last half of it."""
        keep = self.context_length // 2
        window, window_mask = ids, mask
        while max_new_tokens > 0:
            n = min(max_new_tokens, self.context_length - window.shape[1])
            made = self.model.generate(
                input_ids=window,
                attention_mask=window_mask,
                max_new_tokens=n,
                pad_token_id=self.tokenizer.eos_token_id,
                use_cache=True,
                **generation,
            )[:, window.shape[1] :]
            if len(made) != len(ids):  # num_return_sequences: each prompt's rows, in turn
                ids = ids.repeat_interleave(len(made) // len(ids), dim=0)
                mask = mask.repeat_interleave(len(made) // len(mask), dim=0)
                generation = {k: v for k, v in generation.items() if k != "num_return_sequences"}
            ids = torch.cat([ids, made], dim=1)
            mask = torch.cat([mask, torch.ones_like(made)], dim=1)
            if made.shape[1] < n:  # every sequence has ended
                break
            window, window_mask = ids[:, -keep:], mask[:, -keep:]
            max_new_tokens -= n
        return ids

    @torch.no_grad()
    @torch.compiler.set_stance("force_eager")  # one call of its own length: not worth compiling
    def attention_maps(self, text: str, target: str | None = None) -> list[AttentionMap]:
        """Causal self-attention of every layer and head over `text` (up to the context)."""
        if target is not None:
            raise GenlabError("target= is for encoder-decoder models; GPT-2 only takes text=")
        if self.char_level:
            refuse_unknown_characters(self.tokenizer, [text], "text=")
        ids = self.tokenizer(text)["input_ids"][: self.context_length]
        if not ids:
            raise GenlabError("text= is empty: give some text to draw attention over")
        was_training = self.model.training
        self.model.eval()
        output = hf_attentions(self.model, input_ids=torch.tensor([ids], device=self.device))
        self.model.train(was_training)
        labels = self.tokenizer.convert_ids_to_tokens(ids)
        weights = torch.stack(output["attentions"])[:, 0]
        return [AttentionMap("self", "GPT-2 self-attention (causal)", weights, labels, labels)]


def gpt2_flops_per_token(network) -> float:
    """Training FLOPs per token of a transformers GPT-2, PaLM's estimate as nanoGPT's
    `estimate_mfu` makes it: 6 per parameter (less the position embeddings) plus attention's
    12 x layers x width x context."""
    config = network.config
    params = sum(p.numel() for p in network.parameters())
    params -= network.transformer.wpe.weight.numel()
    return 6 * params + 12 * config.n_layer * config.n_embd * config.n_positions


def _without_biases(network) -> None:
    """nanoGPT's `bias=False`: the biases of every linear layer and LayerNorm held at zero
    (transformers' GPT-2 has no switch for it), so the network computes exactly a GPT without
    them and still loads in plain transformers."""
    for name, parameter in network.named_parameters():
        if name.endswith(".bias"):
            parameter.data.zero_()
            parameter.requires_grad_(False)


def _load_pretrained(pretrained: str, trust_remote_code: bool):
    from transformers import AutoConfig, GPT2LMHeadModel

    try:
        # Another architecture would load as a GPT-2 with every weight freshly made
        # (transformers only warns).
        kind = AutoConfig.from_pretrained(pretrained, trust_remote_code=trust_remote_code)
        if kind.model_type != "gpt2":
            raise GenlabError(
                f"model.pretrained={pretrained} is a {kind.model_type} model; model=gpt2 "
                f"takes GPT-2 checkpoints (gpt2, distilgpt2, gpt2-medium, ...)"
            )
        # from_pretrained returns eval mode; Lightning keeps modes: dropout would be off.
        return GPT2LMHeadModel.from_pretrained(
            pretrained, trust_remote_code=trust_remote_code
        ).train()
    except (OSError, ValueError) as err:
        raise GenlabError(
            f"cannot load model.pretrained={pretrained} ({err}); it needs internet, a "
            f"Hugging Face cache or a local directory. To train from scratch offline, use "
            f"model.pretrained=null (e.g. experiment=gpt2_shakespeare)"
        ) from None


def _context_length(model: dict[str, Any]) -> tuple[int | None, str]:
    """The context of the configured GPT-2 and where it comes from: `n_positions` for a model
    built from the config; for a pretrained one, its config file when it is on this machine (a
    local directory or the Hugging Face cache; otherwise loading it reports the problem)."""
    pretrained = model.get("pretrained")
    if not pretrained:
        return model.get("n_positions"), "model.n_positions"
    from transformers import AutoConfig

    try:
        config = AutoConfig.from_pretrained(
            pretrained,
            local_files_only=True,
            trust_remote_code=bool(model.get("trust_remote_code")),
        )
    except (OSError, ValueError):
        return None, ""
    return getattr(config, "n_positions", None), f"n_positions of {pretrained}"
