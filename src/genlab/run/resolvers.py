"""The config resolvers that name and guard a run directory, registered by the entry points
(genlab-train, `genlab.train`) before Hydra composes the config."""

from __future__ import annotations

from omegaconf import OmegaConf

from genlab.run.distributed import if_rank_zero, run_stamp
from genlab.run.run_dir import RunDir


def first_set(*values):
    """`${first_set:a,b}`: a unless it is null, else b (oc.select returns a null value as is)."""
    return next((v for v in values if v is not None), None)


def if_new_run(run_dir, overwrite, value):
    """`${if_new_run:${run_dir},${overwrite},x}`: x for a new run, null when run_dir names a
    folder that already holds a run (its run record) and overwrite is false."""
    holds_run = run_dir and RunDir(run_dir).has_record()
    return None if holds_run and not overwrite else value


def register_resolvers() -> None:
    """`${run_stamp:%Y-%m-%d_%H-%M-%S}` names a new run directory (all ranks of a job agree);
    `${if_rank_zero:x}` is x in rank 0 and null in the other ranks of a distributed job."""
    resolvers = {
        "first_set": (first_set, False),
        "run_stamp": (run_stamp, True),
        "if_rank_zero": (if_rank_zero, False),
        "if_new_run": (if_new_run, False),
    }
    for name, (function, cached) in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function, use_cache=cached)
