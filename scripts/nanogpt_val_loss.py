#!/usr/bin/env python
"""The loss of a nanoGPT shakespeare_char checkpoint over its whole validation split, in the
windows genlab's test uses (every window of block_size + 1 characters at stride block_size), to
compare with `genlab-train experiment=gpt_shakespeare_char`'s test/loss (docs/benchmarks.md).

    python scripts/nanogpt_val_loss.py <nanoGPT checkout> <out_dir>/ckpt.pt
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F


def main() -> None:
    repo, checkpoint_path = Path(sys.argv[1]), Path(sys.argv[2])
    sys.path.insert(0, str(repo))
    from model import GPT, GPTConfig  # nanoGPT's

    checkpoint = torch.load(checkpoint_path, map_location="cpu", weights_only=False)
    model = GPT(GPTConfig(**checkpoint["model_args"]))
    model.load_state_dict({k.removeprefix("_orig_mod."): v for k, v in checkpoint["model"].items()})
    model.eval()
    block = checkpoint["model_args"]["block_size"]
    val = np.memmap(repo / "data" / "shakespeare_char" / "val.bin", dtype=np.uint16, mode="r")
    starts = np.arange(0, len(val) - block, block)
    total, count = 0.0, 0
    with torch.no_grad():
        for chunk in np.array_split(starts, len(starts) // 64 + 1):
            windows = np.stack([val[s : s + block + 1] for s in chunk]).astype(np.int64)
            w = torch.from_numpy(windows)
            logits, _ = model(w[:, :-1].contiguous(), w[:, 1:].contiguous())
            targets = w[:, 1:].flatten()
            total += F.cross_entropy(logits.flatten(0, 1), targets, reduction="sum").item()
            count += targets.numel()
    print(
        f"iter {checkpoint['iter_num']}: its own val estimate {checkpoint['best_val_loss']:.4f}, "
        f"whole validation split {total / count:.4f}"
    )


if __name__ == "__main__":
    main()
