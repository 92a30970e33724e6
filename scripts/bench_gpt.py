#!/usr/bin/env python
"""genlab-train vs a plain nanoGPT-style PyTorch loop: the character-level GPT of
`experiment=gpt_shakespeare_char` on tiny Shakespeare.

Both run as whole processes, plain first, then genlab (with --repeats N, alternated; medians):

- plain: nanoGPT's train.py reduced to what the experiment does, without genlab. The text's
  sorted characters (plus an end-of-text id, as genlab's vocabulary has) as uint16 ids, the
  first 90% to train; transformers' GPT2LMHeadModel of the same config (4 layers, 4 heads,
  width 128, context 64, no dropout); every iteration 12 windows at random starts
  (`torch.randint(len(train) - 64, (12,))`, nanoGPT's get_batch), inputs w[:-1] and targets
  w[1:]; AdamW lr 1e-3, betas (0.9, 0.99), weight decay 0.1 on >= 2-D parameters only
  (nanoGPT's configure_optimizers); linear warm-up over 100 iterations then cosine to 1e-4
  (genlab's schedule); gradients clipped at 1.0; validation every 250 iterations and at the
  end on 20 batches of windows drawn once, the same windows genlab's validation draws.
- genlab: `genlab-train experiment=gpt_shakespeare_char data.path=...` as shipped (TensorBoard,
  checkpoints, text samples, the test of the best checkpoint after training).

    python scripts/bench_gpt.py [--data tinyshakespeare.txt] [--iters 2000] [--repeats 1]

Prints each one's wall time (the whole process), training tokens/s (iterations x 12 x 64 over
the time of the training loop with its validations; genlab's from its `time/epoch_s`) and final
validation loss, and the genlab/plain ratios.
"""

from __future__ import annotations

import argparse
import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from genlab.run.threads import choose_threads

REPO = Path(__file__).resolve().parents[1]
DEFAULT_DATA = REPO.parent / "shared" / "data" / "tinyshakespeare.txt"
# experiment=gpt_shakespeare_char
BLOCK, BATCH, LR, MIN_LR_RATIO, WARMUP = 64, 12, 1e-3, 0.1, 100
EVAL_INTERVAL, EVAL_BATCHES = 250, 20
SEED, VALIDATION_SEED = 42, 0


def plain_main(data: Path, iters: int, threads: int | None) -> None:
    """The baseline loop; prints its results as one JSON line."""
    import numpy as np
    import torch
    import torch.nn.functional as F
    from transformers import GPT2Config, GPT2LMHeadModel

    if threads:
        torch.set_num_threads(threads)
    torch.manual_seed(SEED)
    text = data.read_text(encoding="utf-8")
    chars = sorted(set(text))
    vocab_size = len(chars) + 1  # the end-of-text id genlab's vocabulary adds
    lookup = {c: i for i, c in enumerate(chars)}
    ids = np.array([lookup[c] for c in text], dtype=np.uint16)
    n_train = int(len(ids) * 0.9)
    train, val = ids[:n_train], ids[n_train:]

    config = GPT2Config(
        vocab_size=vocab_size,
        n_positions=BLOCK,
        n_embd=128,
        n_layer=4,
        n_head=4,
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
        bos_token_id=vocab_size - 1,
        eos_token_id=vocab_size - 1,
    )
    model = GPT2LMHeadModel(config).train()
    params = [p for p in model.parameters() if p.requires_grad]
    optimizer = torch.optim.AdamW(
        [
            {"params": [p for p in params if p.dim() >= 2], "weight_decay": 0.1},
            {"params": [p for p in params if p.dim() < 2], "weight_decay": 0.0},
        ],
        lr=LR,
        betas=(0.9, 0.99),
    )
    warmup = min(WARMUP, iters)

    def lr_at(it: int) -> float:
        if it < warmup:
            return LR * (it + 1) / warmup
        progress = min(1.0, (it - warmup) / max(1, iters - warmup))
        return LR * (MIN_LR_RATIO + (1 - MIN_LR_RATIO) * 0.5 * (1 + math.cos(math.pi * progress)))

    def windows(split: np.ndarray, starts) -> tuple[torch.Tensor, torch.Tensor]:
        rows = [torch.from_numpy(split[i : i + BLOCK + 1].astype(np.int64)) for i in starts]
        w = torch.stack(rows)
        return w[:, :-1], w[:, 1:]

    # genlab's validation windows: drawn once from their own seed, the first 20 batches.
    count = max(1, len(val) // (BLOCK * BATCH)) * BATCH
    generator = torch.Generator().manual_seed(VALIDATION_SEED)
    val_starts = torch.randint(len(val) - BLOCK, (count,), generator=generator)[
        : EVAL_BATCHES * BATCH
    ]

    @torch.no_grad()
    def validate() -> float:
        model.eval()
        losses = []
        for starts in val_starts.split(BATCH):
            x, y = windows(val, starts.tolist())
            logits = model(input_ids=x).logits
            losses.append(F.cross_entropy(logits.flatten(0, 1), y.flatten()).item())
        model.train()
        return sum(losses) / len(losses)

    every = min(EVAL_INTERVAL, iters)
    start = time.perf_counter()
    for it in range(iters):
        for group in optimizer.param_groups:
            group["lr"] = lr_at(it)
        x, y = windows(train, torch.randint(len(train) - BLOCK, (BATCH,)).tolist())
        logits = model(input_ids=x).logits
        loss = F.cross_entropy(logits.flatten(0, 1), y.flatten())
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        if (it + 1) % every == 0:
            val_loss = validate()
    train_s = time.perf_counter() - start
    print(json.dumps({"train_s": train_s, "val_loss": val_loss}))


def run_plain(data: Path, iters: int, threads: int) -> dict:
    start = time.perf_counter()
    out = subprocess.run(
        [sys.executable, __file__, "--plain", f"--data={data}", f"--iters={iters}"]
        + [f"--threads={threads}"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    wall = time.perf_counter() - start
    result = json.loads(out.strip().splitlines()[-1])
    return {"wall_s": wall, "train_s": result["train_s"], "val_loss": result["val_loss"]}


def run_genlab(data: Path, iters: int, threads: int, workdir: Path) -> dict:
    run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=workdir))
    command = [
        str(Path(sys.executable).with_name("genlab-train")),
        "experiment=gpt_shakespeare_char",
        f"data.path={data}",
        f"threads={threads}",
        f"trainer.max_steps={iters}",
        f"trainer.val_check_interval={min(EVAL_INTERVAL, iters)}",
        f"paths.cache_dir={workdir / 'cache'}",
        f"paths.log_dir={workdir}",
        f"hydra.run.dir={run_dir}",
    ]
    start = time.perf_counter()
    done = subprocess.run(command, capture_output=True, text=True)
    wall = time.perf_counter() - start
    if done.returncode:
        sys.exit(f"bench_gpt: genlab-train failed:\n{done.stderr[-3000:]}")
    metrics = json.loads((run_dir / "metrics.json").read_text())
    return {"wall_s": wall, "train_s": _training_time(run_dir), "val_loss": metrics["val/loss"]}


def _training_time(run_dir: Path) -> float:
    """The sum of the `time/epoch_s` scalars genlab's EpochTimer logs (training with its
    validations, as the plain loop's time)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    events = EventAccumulator(str(run_dir / "tensorboard"))
    events.Reload()
    return sum(e.value for e in events.Scalars("time/epoch_s"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--data",
        type=Path,
        default=DEFAULT_DATA if DEFAULT_DATA.is_file() else None,
        help="tiny Shakespeare (input.txt of karpathy/char-rnn)",
    )
    parser.add_argument("--iters", type=int, default=2000)
    parser.add_argument("--repeats", type=int, default=1, help="alternate runs; report medians")
    parser.add_argument(
        "--threads",
        type=int,
        help="torch's CPU threads for both (default: what genlab's threads=auto picks now)",
    )
    parser.add_argument("--plain", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.data is None or not args.data.is_file():
        sys.exit("bench_gpt: give --data <tinyshakespeare.txt>")
    if args.plain:
        plain_main(args.data, args.iters, args.threads)
        return
    threads = args.threads or choose_threads("auto", 1)

    workdir = Path(tempfile.mkdtemp(prefix="bench_gpt_"))
    runs: dict[str, list[dict]] = {"plain PyTorch": [], "genlab-train": []}
    for _ in range(args.repeats):
        runs["plain PyTorch"].append(run_plain(args.data, args.iters, threads))
        runs["genlab-train"].append(run_genlab(args.data, args.iters, threads, workdir))
    tokens = args.iters * BATCH * BLOCK
    med = {
        name: {k: statistics.median(r[k] for r in rs) for k in rs[0]} for name, rs in runs.items()
    }
    print(
        f"char GPT 4x128, context {BLOCK}, batch {BATCH}, {args.iters} iterations "
        f"({tokens} training tokens), {threads} CPU thread(s), medians of {args.repeats} run(s) "
        f"each"
    )
    print(f"{'':16}{'wall s':>10}{'train s':>10}{'tokens/s':>11}{'val loss':>10}")
    for name, m in med.items():
        rate = tokens / m["train_s"]
        print(f"{name:16}{m['wall_s']:10.1f}{m['train_s']:10.1f}{rate:11.0f}{m['val_loss']:10.4f}")
    for name, rs in runs.items():
        print(f"  {name} wall s per run: " + ", ".join(f"{r['wall_s']:.1f}" for r in rs))
    plain, genlab = med["plain PyTorch"], med["genlab-train"]
    print(
        f"ratio genlab/plain: wall {genlab['wall_s'] / plain['wall_s']:.3f}, tokens/s "
        f"{plain['train_s'] / genlab['train_s']:.3f}, val loss "
        f"{genlab['val_loss'] / plain['val_loss']:.3f}"
    )
    print(f"genlab runs in {workdir}")


if __name__ == "__main__":
    main()
