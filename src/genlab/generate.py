"""genlab-generate: draw samples from a finished run's model and write them as an image grid.

    genlab-generate run_dir=outputs/dcgan_fashion_mnist/<run> [n=64] [out=samples.png] [seed=0]
                    [ckpt_path=best|last|FILE] [nrow=8]

Works for any run whose model can `sample` (VAE, GAN, DCGAN). `out` is relative to the current
directory; by default the grid goes to <run_dir>/samples.png.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch
from omegaconf import OmegaConf

from genlab.errors import GenlabError, user_errors_exit
from genlab.runs import load_run

_ARGS = {"run_dir", "n", "out", "seed", "ckpt_path", "nrow"}


def generate_grid(
    run_dir: str | Path,
    n: int = 64,
    out: str | Path | None = None,
    seed: int = 0,
    ckpt_path: str = "best",
    nrow: int = 8,
) -> Path:
    """Sample `n` images with a seeded generator and save them as a grid PNG; return its path."""
    from torchvision.utils import save_image

    if n < 1:
        raise GenlabError(f"n={n}: ask for at least one sample")
    model, _, _ = load_run(run_dir, ckpt_path)
    if not hasattr(model, "sample"):
        raise GenlabError(
            f"{type(model).__name__} cannot sample: genlab-generate needs a VAE or GAN run"
        )
    samples = model.sample(n, generator=torch.Generator().manual_seed(seed))
    low, high = model.value_range
    path = Path(out) if out else Path(run_dir) / "samples.png"
    path.parent.mkdir(parents=True, exist_ok=True)
    save_image(((samples.float() - low) / (high - low)).clamp(0, 1), path, nrow=nrow, pad_value=1.0)
    return path


def main(argv: list[str] | None = None) -> None:
    args = OmegaConf.to_container(OmegaConf.from_cli(sys.argv[1:] if argv is None else argv))
    with user_errors_exit():
        unknown = set(args) - _ARGS
        if unknown or "run_dir" not in args:
            raise GenlabError(
                "usage: genlab-generate run_dir=<run> [n=64] [out=FILE.png] [seed=0] "
                "[ckpt_path=best] [nrow=8]" + (f"; unknown: {sorted(unknown)}" if unknown else "")
            )
        path = generate_grid(**args)
    print(f"wrote {path}")


if __name__ == "__main__":
    main()
