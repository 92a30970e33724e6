"""genlab: an experiment framework for generative models on PyTorch Lightning and Hydra.

import genlab
metrics = genlab.train(["model=ae", "trainer.max_epochs=3"])   # same as genlab-train
model, datamodule, cfg = genlab.load_run("outputs/ae_digits/<run>")
"""

from __future__ import annotations

import warnings
from pathlib import Path

from omegaconf import OmegaConf

__version__ = "0.1.0"

# `${first_set:a,b}`: a unless it is null, else b (oc.select returns a null value as is).
# Registered on import so the configs resolve for the CLI, the compose API and tests alike.
if not OmegaConf.has_resolver("first_set"):
    OmegaConf.register_new_resolver(
        "first_set", lambda *values: next((v for v in values if v is not None), None)
    )

# `${run_stamp:%Y-%m-%d_%H-%M-%S}` names a new run directory; `${if_rank_zero:x}` is x in rank 0
# and null in the other ranks of a distributed job (see genlab.distributed).
if not OmegaConf.has_resolver("run_stamp"):
    OmegaConf.register_new_resolver(
        "run_stamp", lambda pattern: _distributed().run_stamp(pattern), use_cache=True
    )
if not OmegaConf.has_resolver("if_rank_zero"):
    OmegaConf.register_new_resolver(
        "if_rank_zero", lambda value: _distributed().if_rank_zero(value)
    )

# `${if_new_run:${run_dir},${overwrite},x}`: x for a new run, null when run_dir names a folder
# that already holds a run (its run.json) and overwrite is false.
if not OmegaConf.has_resolver("if_new_run"):
    OmegaConf.register_new_resolver(
        "if_new_run",
        lambda run_dir, overwrite, value: (
            None if run_dir and not overwrite and Path(run_dir, "run.json").exists() else value
        ),
    )


def _distributed():
    import genlab.distributed

    return genlab.distributed


# In-memory datasets are sliced a batch at a time: DataLoader workers would only add overhead.
warnings.filterwarnings("ignore", ".*does not have many workers.*")
# torchmetrics' KID keeps its features in memory: genlab's classifier features are small.
warnings.filterwarnings("ignore", ".*will save all extracted features in buffer.*")
# Epoch metrics are summed and reduced across ranks in GenlabModule before they are logged, so
# Lightning's advice to add sync_dist=True (an average of already equal values) does not apply.
warnings.filterwarnings("ignore", ".*when logging on epoch level in distributed setting.*")
# Lightning 2.6 calls an API that torch 2.14 deprecates; nothing for a user to act on.
warnings.filterwarnings("ignore", ".*isinstance\\(treespec, LeafSpec\\)` is deprecated.*")


def __getattr__(name: str):
    # Imported on first use: `import genlab` stays light, and `genlab.train` is the
    # (callable) module behind `python -m genlab.train`.
    if name == "train":
        import genlab.train as train_module

        return train_module
    if name == "load_run":
        from genlab.runs import load_run

        return load_run
    raise AttributeError(f"module 'genlab' has no attribute {name!r}")
