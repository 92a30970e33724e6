#!/usr/bin/env python
"""GPT-2 throughput: genlab vs plain PyTorch / plain transformers, side by side in one run.

    python scripts/bench_gpt2.py [--corpus ../shared/data/tinyshakespeare.txt] [--steps 12]

Training: the `experiment=gpt2_shakespeare` model (4 layers, width 128, block 128, batch 32) on
the same tokenized blocks, (a) through genlab's GPT2 LightningModule and a Lightning Trainer, (b)
through a plain loop (forward, backward, AdamW step). Tokens/s over the steps after a warm-up.

Generation: greedy, 100 new tokens (the context is 128) for 4 prompts, (a)
`genlab.cli.generate.generate_text` (what genlab-generate runs; its model-building time, measured
separately, is subtracted), (b) a direct `model.generate` on the same weights. Loading excluded.

Prints tokens/s of each side and the genlab/plain ratios (targets: >= 0.9).
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import lightning as L
import torch

from genlab.cli.generate import generate_text
from genlab.data.text import TextDataModule
from genlab.models.gpt2 import GPT2

SIZE = dict(n_layer=4, n_head=4, n_embd=128, n_positions=128, dropout=0.1)
PROMPTS = ["ROMEO:", "The king", "First Citizen:", "O, what a"]


class StepTimer(L.Callback):
    def __init__(self, warmup: int):
        self.warmup, self.start, self.steps = warmup, None, 0

    def on_train_batch_start(self, trainer, pl_module, batch, batch_idx):
        if batch_idx == self.warmup:
            self.start = time.perf_counter()

    def on_train_batch_end(self, trainer, pl_module, outputs, batch, batch_idx):
        if batch_idx >= self.warmup:
            self.steps += 1
            self.seconds = time.perf_counter() - self.start


def train_genlab(datamodule, steps: int, warmup: int, batch_size: int) -> float:
    torch.manual_seed(0)
    timer = StepTimer(warmup)
    trainer = L.Trainer(
        max_epochs=1,
        limit_train_batches=steps + warmup,
        limit_val_batches=0,
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
        gradient_clip_val=1.0,
        accelerator="cpu",
        callbacks=[timer],
    )
    trainer.fit(GPT2(**SIZE), datamodule=datamodule)
    return timer.steps * batch_size * SIZE["n_positions"] / timer.seconds


def train_plain(blocks, steps: int, warmup: int, batch_size: int) -> float:
    """`blocks`: the training split's windows (inputs, targets one token ahead)."""
    torch.manual_seed(0)
    model = GPT2(**SIZE).model.train()
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, betas=(0.9, 0.95), weight_decay=0.1)
    order = torch.randperm(len(blocks))
    for i in range(steps + warmup):
        if i == warmup:
            start = time.perf_counter()
        x, y = blocks.__getitems__(order[i * batch_size : (i + 1) * batch_size].tolist())
        logits = model(input_ids=x).logits
        loss = torch.nn.functional.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
    return steps * batch_size * SIZE["n_positions"] / (time.perf_counter() - start)


def generation(model_dir: Path, new_tokens: int) -> tuple[float, float]:
    from transformers import AutoTokenizer, GPT2LMHeadModel

    options = dict(max_new_tokens=new_tokens, min_new_tokens=new_tokens, do_sample=False)
    generate_text(PROMPTS[:1], pretrained=str(model_dir), max_new_tokens=4)  # warm caches
    start = time.perf_counter()
    texts = generate_text(PROMPTS, pretrained=str(model_dir), **options)
    genlab_s = time.perf_counter() - start
    load_s = _load_time(model_dir)
    genlab_rate = len(texts) * new_tokens / (genlab_s - load_s)

    model = GPT2LMHeadModel.from_pretrained(model_dir).eval()
    tokenizer = AutoTokenizer.from_pretrained(model_dir)
    tokenizer.pad_token, tokenizer.padding_side = tokenizer.eos_token, "left"
    encoded = tokenizer(PROMPTS, return_tensors="pt", padding=True)
    start = time.perf_counter()
    with torch.no_grad():
        output = model.generate(**encoded, pad_token_id=tokenizer.eos_token_id, **options)
    plain_rate = len(PROMPTS) * new_tokens / (time.perf_counter() - start)
    assert output.shape[1] == encoded["input_ids"].shape[1] + new_tokens
    return genlab_rate, plain_rate


def _load_time(model_dir: Path) -> float:
    """What generate_text spends building the model, to subtract it: the comparison is decoding."""
    start = time.perf_counter()
    GPT2(pretrained=str(model_dir)).eval()
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--corpus",
        default=str(Path(__file__).parents[1].parent / "shared/data/tinyshakespeare.txt"),
    )
    parser.add_argument("--steps", type=int, default=12)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--new-tokens", type=int, default=100)
    args = parser.parse_args()
    cache = tempfile.mkdtemp(prefix="bench_gpt2_")
    datamodule = TextDataModule(
        path=args.corpus,
        block_size=SIZE["n_positions"],
        batch_size=args.batch_size,
        cache_dir=cache,
    )
    datamodule.setup()
    blocks = datamodule.splits["train"]

    plain = train_plain(blocks, args.steps, args.warmup, args.batch_size)
    genlab = train_genlab(datamodule, args.steps, args.warmup, args.batch_size)
    model_dir = Path(cache) / "model"
    torch.manual_seed(0)
    small = GPT2(**SIZE)
    small.model.save_pretrained(model_dir)
    small.tokenizer.save_pretrained(model_dir)
    genlab_gen, plain_gen = generation(model_dir, args.new_tokens)

    print(
        f"GPT-2 {SIZE['n_layer']}x{SIZE['n_embd']}, block {SIZE['n_positions']}, "
        f"batch {args.batch_size}, {args.steps} timed steps, CPU threads {torch.get_num_threads()}"
    )
    print(f"{'':28}{'genlab':>12}{'plain':>12}{'ratio':>8}")
    print(f"{'training tokens/s':28}{genlab:12.0f}{plain:12.0f}{genlab / plain:8.3f}")
    ratio = genlab_gen / plain_gen
    print(f"{'generation tokens/s':28}{genlab_gen:12.1f}{plain_gen:12.1f}{ratio:8.3f}")


if __name__ == "__main__":
    main()
