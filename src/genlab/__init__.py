"""genlab: an experiment framework for generative models on PyTorch Lightning and Hydra.

    import genlab
    metrics = genlab.train(["model=ae", "trainer.max_epochs=3"])   # same as genlab-train
    model, datamodule, cfg = genlab.load_run("outputs/ae_digits/<run>")

The packages and the order of their layers: README.md, "Layout".
"""

from __future__ import annotations

from typing import TYPE_CHECKING

__version__ = "0.1.0"
__all__ = ["__version__", "load_run", "train"]

if TYPE_CHECKING:
    from genlab.run.job import train
    from genlab.run.loading import load_run


def __getattr__(name: str):
    # Imported on first use, so that `import genlab` (and every console script's start) does
    # not pay for Lightning and torch until a run needs them.
    if name == "train":
        from genlab.run.job import train

        return train
    if name == "load_run":
        from genlab.run.loading import load_run

        return load_run
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")
