#!/usr/bin/env python
"""On a GPU, side by side in one go: genlab-train against plain PyTorch loops of the same models.

    scripts/bench_gpu.sh             # the benchmark, on one CUDA GPU (about 8 minutes)
    scripts/bench_gpu.sh --dry-run   # every row at toy sizes on the CPU (checks the script)

Rows, each side a process of its own:
- GPT-2 124M (`experiment=gpt2_124m`: bf16-mixed, fused AdamW, SDPA attention, TF32, gradients
  clipped at 1.0; batches of 12 x 1,024 tokens, no accumulation), `model.compile` off and on,
  against a plain loop over the same `transformers` GPT2LMHeadModel with the same settings:
  tokens/s, MFU (the model's FLOPs per token x tokens/s over the GPU's bf16 peak), peak memory.
  Steady state: genlab's first epoch (which compiles) is left out, and the plain loop's first
  10 steps.
- VAE and DCGAN epochs on Fashion-MNIST (`experiment=vae_fashion_mnist`,
  `experiment=dcgan_fashion_mnist` without FID) with the images held on the GPU
  (`data.on_device=true`), fused Adam and the NaN check read every 100 steps, against plain
  loops over the same networks on tensors held on the GPU: seconds per epoch (training and
  validation; genlab's include its image grids, as a user's run does), first epoch left out;
  and the VAE once more with `model.compile=reduce-overhead` (CUDA graphs).

Without the data at hand, random images in Fashion-MNIST's format and a text made from this
repository's files stand in (scripts/gpu_check.py): the speed does not depend on the pixels or
the words. Prints one table with the genlab/plain ratios.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from gpu_check import corpus, fashion_dir, scalars

REPO = Path(__file__).resolve().parents[1]
# genlab-train, through this interpreter (`python -m genlab`): also where genlab is importable
# but its console script is not on the PATH.
GENLAB_TRAIN = [sys.executable, "-m", "genlab"]
# Steps the plain loops run before timing (compilation, cuDNN's algorithm search).
WARMUP_STEPS = 10


def sizes(dry_run: bool) -> dict:
    """GPT-2 small on a GPU; a toy GPT-2 and short epochs to check the script on a CPU."""
    if dry_run:
        return {
            "gpt2": {"n_layer": 1, "n_head": 2, "n_embd": 64, "block": 64, "batch": 4},
            "text_chars": 40_000,  # about 40 batches an epoch
            "gpt2_epochs": 2,
            "image_epochs": 2,
            "image_batches": 5,
        }
    return {
        "gpt2": {"n_layer": 12, "n_head": 12, "n_embd": 768, "block": 1024, "batch": 12},
        "text_chars": 4_500_000,  # about 1.2M training tokens: ~100 batches an epoch
        "gpt2_epochs": 3,
        "image_epochs": 4,
        "image_batches": None,
    }


# genlab-train: one run, its per-epoch scalars.


def genlab_run(overrides: list[str], work: Path) -> dict[str, list[float]]:
    run_dir = Path(tempfile.mkdtemp(prefix="run_", dir=work))
    command = [*GENLAB_TRAIN, *overrides, "test=false", f"hydra.run.dir={run_dir}"]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench_gpu: {' '.join(command)} failed:\n{done.stderr[-3000:]}")
    return scalars(run_dir, per_epoch=True)


def steady(values: list[float]) -> float:
    """The mean over epochs after the first (which compiles and warms up)."""
    return statistics.mean(values[1:] if len(values) > 1 else values)


def steady_peak(scalars_: dict[str, list[float]]) -> float:
    """Peak GPU memory over the epochs after the first (as the plain loops count it)."""
    values = scalars_.get("memory/peak_gb", [float("nan")])
    return max(values[1:] if len(values) > 1 else values)


# The plain loops, run as `bench_gpu.py --plain MODEL`: print one JSON line.


def plain_gpt2(args, size: dict) -> dict:
    import torch
    import torch.nn.functional as F
    from transformers import GPT2Config, GPT2LMHeadModel

    from genlab.callbacks.epoch_timer import device_peak_flops
    from genlab.models.gpt2 import gpt2_flops_per_token

    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(0)
    config = GPT2Config(
        n_layer=size["n_layer"],
        n_head=size["n_head"],
        n_embd=size["n_embd"],
        n_positions=size["block"],
        resid_pdrop=0.0,
        embd_pdrop=0.0,
        attn_pdrop=0.0,
    )
    model = GPT2LMHeadModel(config).to(device).train()
    decay = [p for p in model.parameters() if p.dim() >= 2]
    no_decay = [p for p in model.parameters() if p.dim() < 2]
    optimizer = torch.optim.AdamW(
        [{"params": decay, "weight_decay": 0.1}, {"params": no_decay, "weight_decay": 0.0}],
        lr=6e-4,
        betas=(0.9, 0.95),
        fused=True,
    )
    if args.compile:
        model.compile()
    # nanoGPT's get_batch: random windows of a token array in host memory, copied pinned.
    tokens = torch.randint(config.vocab_size, (2_000_000,), dtype=torch.int64)
    batch, block = size["batch"], size["block"]

    def get_batch():
        starts = torch.randint(len(tokens) - block - 1, (batch,))
        window = torch.stack([tokens[s : s + block + 1] for s in starts.tolist()])
        if device.type == "cuda":
            window = window.pin_memory().to(device, non_blocking=True)
        return window[:, :-1], window[:, 1:]

    def step():
        inputs, targets = get_batch()
        with torch.autocast(device.type, dtype=torch.bfloat16):
            logits = model(input_ids=inputs).logits
        loss = F.cross_entropy(logits.flatten(0, 1).float(), targets.flatten())
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
        optimizer.zero_grad(set_to_none=True)

    for _ in range(WARMUP_STEPS):
        step()
    synchronize(device)
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(device)
    start = time.perf_counter()
    for _ in range(args.steps):
        step()
    synchronize(device)
    tokens_per_s = args.steps * batch * block / (time.perf_counter() - start)
    peak = device_peak_flops(device)
    return {
        "tokens_per_s": tokens_per_s,
        "mfu": gpt2_flops_per_token(model) * tokens_per_s / peak if peak else None,
        "peak_gb": peak_memory_gb(device),
    }


def plain_images(args, model_name: str) -> dict:
    """The VAE of the PyTorch example or the DCGAN tutorial's loop, on images held on the device;
    each epoch trains on the training images and scores the validation images."""
    import torch
    import torch.nn.functional as F

    from genlab.data.fashion_mnist import FashionMNISTDataModule
    from genlab.nn.dcgan import DCGANDiscriminator, DCGANGenerator
    from genlab.nn.vae import VAENet

    device = torch.device(args.device)
    torch.backends.cuda.matmul.allow_tf32 = True
    torch.manual_seed(0)
    value_range = (0.0, 1.0) if model_name == "vae" else (-1.0, 1.0)
    data = FashionMNISTDataModule(data_dir=args.fashion_dir, value_range=value_range)
    data.setup()
    train, val = (data.splits[s].images.to(device) for s in ("train", "val"))

    def pixels(images):
        return images.float().div_(255) * (value_range[1] - value_range[0]) + value_range[0]

    if model_name == "vae":
        vae = VAENet(28 * 28, 20, [400]).to(device)
        optimizer = torch.optim.Adam(vae.parameters(), lr=1e-3, fused=True)

        def vae_loss(images):
            x = images.flatten(1)
            logits, mu, logvar = vae(x)
            bce = F.binary_cross_entropy_with_logits(logits, x, reduction="sum")
            return (bce - 0.5 * torch.sum(1 + logvar - mu.pow(2) - logvar.exp())) / len(x)

        def train_step(x):
            loss = vae_loss(x)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()

        def val_step(x):
            return vae_loss(x)

    else:
        generator = DCGANGenerator(100, (1, 28, 28), 64).to(device)
        discriminator = DCGANDiscriminator((1, 28, 28), 64).to(device)
        opt_g = torch.optim.Adam(generator.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True)
        opt_d = torch.optim.Adam(
            discriminator.parameters(), lr=2e-4, betas=(0.5, 0.999), fused=True
        )
        bce = F.binary_cross_entropy_with_logits

        # genlab's GAN step (models/gan.py): the discriminator on a fake made without
        # gradients, then the generator on fresh noise.
        def train_step(real):
            with torch.no_grad():
                fake = generator(torch.randn(len(real), 100, device=device))
            d_real, d_fake = discriminator(real), discriminator(fake)
            loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
            opt_d.zero_grad(set_to_none=True)
            loss_d.backward()
            opt_d.step()
            d_fake = discriminator(generator(torch.randn(len(real), 100, device=device)))
            loss_g = bce(d_fake, torch.ones_like(d_fake))
            opt_g.zero_grad(set_to_none=True)
            loss_g.backward()
            opt_g.step()

        def val_step(real):  # both players' losses, as genlab's validation logs them
            fake = generator(torch.randn(len(real), 100, device=device))
            d_real, d_fake = discriminator(real), discriminator(fake)
            loss_d = bce(d_real, torch.ones_like(d_real)) + bce(d_fake, torch.zeros_like(d_fake))
            d_fake = discriminator(fake)
            return loss_d + bce(d_fake, torch.ones_like(d_fake))

    epoch_s = []
    for _ in range(args.epochs):
        synchronize(device)
        start = time.perf_counter()
        order = torch.randperm(len(train), device=device).split(128)
        for index in order[: args.batches]:
            train_step(pixels(train[index]))
        with torch.no_grad():
            total = sum(val_step(pixels(x)) for x in val.split(128)[: args.batches])
        float(total)  # the epoch's one host read
        epoch_s.append(time.perf_counter() - start)
    return {"epoch_s": steady(epoch_s), "peak_gb": peak_memory_gb(device)}


def synchronize(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def peak_memory_gb(device) -> float | None:
    import torch

    return torch.cuda.max_memory_allocated(device) / 2**30 if device.type == "cuda" else None


def plain_run(model: str, options: list[str]) -> dict:
    command = [sys.executable, __file__, "--plain", model, *options]
    done = subprocess.run(command, capture_output=True, text=True)
    if done.returncode:
        sys.exit(f"bench_gpu: the plain {model} loop failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


# The comparison.


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--dry-run", action="store_true", help="toy sizes on the CPU")
    parser.add_argument("--fashion-dir", default="/usr/share/datasets/fashion-mnist")
    parser.add_argument("--corpus", default=str(REPO.parent / "shared/data/tinyshakespeare.txt"))
    parser.add_argument("--models", default="gpt2,vae,dcgan")
    parser.add_argument("--plain", help=argparse.SUPPRESS)
    parser.add_argument("--device", default="cuda", help=argparse.SUPPRESS)
    parser.add_argument("--compile", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--steps", type=int, default=100, help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=2, help=argparse.SUPPRESS)
    parser.add_argument("--batches", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    size = sizes(args.dry_run)
    if args.plain:
        result = plain_gpt2(args, size["gpt2"]) if args.plain == "gpt2" else None
        result = result or plain_images(args, args.plain)
        print(json.dumps(result))
        return

    device = "cpu" if args.dry_run else "cuda"
    accelerator = "cpu" if args.dry_run else "gpu"
    work = Path(tempfile.mkdtemp(prefix="bench_gpu_"))
    common = [f"accelerator={accelerator}", "logger=tensorboard", f"paths.cache_dir={work}/cache"]
    plain_common = [f"--device={device}"] + (["--dry-run"] if args.dry_run else [])
    rows = []
    models = args.models.split(",")
    if "gpt2" in models:
        text = Path(corpus(args.corpus)).read_text(encoding="utf-8")
        text_file = work / "corpus.txt"
        copies = -(-size["text_chars"] // len(text))
        text_file.write_text((text * copies)[: size["text_chars"]], encoding="utf-8")
        gpt = size["gpt2"]
        gpt2_overrides = [
            "experiment=gpt2_124m",
            f"data.path={text_file}",
            f"model.n_layer={gpt['n_layer']}",
            f"model.n_head={gpt['n_head']}",
            f"model.n_embd={gpt['n_embd']}",
            f"model.n_positions={gpt['block']}",
            f"data.block_size={gpt['block']}",
            f"data.batch_size={gpt['batch']}",
            "trainer.accumulate_grad_batches=1",
            f"trainer.max_epochs={size['gpt2_epochs']}",
            "trainer.max_steps=-1",
            "trainer.limit_val_batches=0",
        ]
        for compiled in (False, True):
            scalars_ = genlab_run(
                [*common, *gpt2_overrides, f"model.compile={str(compiled).lower()}"], work
            )
            # The plain loop times as many steps as an epoch of genlab's has batches.
            windows = scalars_["time/samples_per_s"][-1] * scalars_["time/epoch_s"][-1]
            epoch_batches = round(windows / gpt["batch"])
            plain = plain_run(
                "gpt2", [*plain_common, f"--compile={int(compiled)}", f"--steps={epoch_batches}"]
            )
            genlab = {
                "tokens_per_s": steady(scalars_["time/tokens_per_s"]),
                "mfu": steady(scalars_["perf/mfu"]) if "perf/mfu" in scalars_ else None,
                "peak_gb": steady_peak(scalars_),
            }
            rows.append((f"GPT-2 compile={'on' if compiled else 'off'}", "tokens/s", genlab, plain))
            print_row(*rows[-1])
    image_overrides = {
        "vae": ["experiment=vae_fashion_mnist", "model.optimizer.fused=true"],
        "dcgan": [
            "experiment=dcgan_fashion_mnist",
            "model.eval.features=none",
            "callbacks.model_checkpoint.monitor=auto",  # the experiment's val/fid is off
            "model.generator_optimizer.fused=true",
            "model.discriminator_optimizer.fused=true",
        ],
    }
    # Last, as the one row that may not fit the time limit: the VAE with CUDA graphs, against
    # the same (eager) plain loop.
    image_rows = [("vae", "eager"), ("dcgan", "eager"), ("vae", "reduce-overhead")]
    plain_results = {}
    for model, compile_mode in image_rows:
        if model not in models:
            continue
        data_dir = fashion_dir(args.fashion_dir)
        limit = size["image_batches"]
        limits = [f"trainer.limit_train_batches={limit}", f"trainer.limit_val_batches={limit}"]
        scalars_ = genlab_run(
            [
                *common,
                *image_overrides[model],
                f"data.data_dir={data_dir}",
                "data.on_device=true",
                "divergence_check_every=100",
                f"model.compile={'false' if compile_mode == 'eager' else compile_mode}",
                f"trainer.max_epochs={size['image_epochs']}",
                *(limits if limit else []),
            ],
            work,
        )
        genlab = {"epoch_s": steady(scalars_["time/epoch_s"]), "peak_gb": steady_peak(scalars_)}
        if model not in plain_results:
            options = [f"--fashion-dir={data_dir}", f"--epochs={size['image_epochs']}"]
            options += [f"--batches={limit}"] if limit else []
            plain_results[model] = plain_run(model, [*plain_common, *options])
        row = f"{model.upper()} epoch" + ("" if compile_mode == "eager" else f", {compile_mode}")
        rows.append((row, "s/epoch", genlab, plain_results[model]))
        print_row(*rows[-1])
    print_table(rows, device)


def table_row(row: str, measure: str, genlab: dict, plain: dict) -> str:
    key = "tokens_per_s" if measure == "tokens/s" else "epoch_s"
    mfu = memory = "-"
    if genlab.get("mfu") is not None and plain.get("mfu") is not None:
        mfu = f"{genlab['mfu']:.1%} / {plain['mfu']:.1%}"
    if plain.get("peak_gb") is not None:
        memory = f"{genlab['peak_gb']:.2f} / {plain['peak_gb']:.2f}"
    return (
        f"| {row} | {measure} | {genlab[key]:,.2f} | {plain[key]:,.2f} | "
        f"{genlab[key] / plain[key]:.3f} | {mfu} | {memory} |"
    )


def print_row(*row) -> None:
    """Each row as it is measured: a run stopped at its time limit keeps what it measured."""
    print(f"measured: {table_row(*row)}", flush=True)


def print_table(rows: list, device: str) -> None:
    import torch

    name = torch.cuda.get_device_name(0) if device == "cuda" else "CPU (dry run, toy sizes)"
    print(f"\n{name}, torch {torch.__version__}; genlab-train against a plain PyTorch loop")
    print(
        "| row | measure | genlab | plain | genlab/plain | MFU genlab / plain "
        "| peak GB genlab / plain |"
    )
    print("|---|---|---|---|---|---|---|")
    for row in rows:
        print(table_row(*row))


if __name__ == "__main__":
    main()
