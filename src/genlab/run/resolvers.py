"""The resolvers genlab's configs use (run directory names, absolute paths), registered by the
entry points (genlab-train, `genlab.train`) before Hydra composes the config."""

from __future__ import annotations

import os

from omegaconf import OmegaConf

from genlab.run.distributed import run_stamp


def first_set(*values):
    """`${first_set:a,b}`: a unless it is null, else b (oc.select returns a null value as is)."""
    return next((v for v in values if v is not None), None)


def abspath(path: str) -> str:
    """`${abspath:outputs}`: a path made absolute against the directory genlab runs in (a
    tracking store's address must not depend on where a tool that reads it runs)."""
    return os.path.abspath(path)


def register_resolvers() -> None:
    """`${run_stamp:%Y-%m-%d_%H-%M-%S}` names a new run directory: the time, or the job id that
    all ranks of a distributed job share (cached, so the name is decided once)."""
    resolvers = {
        "first_set": (first_set, False),
        "run_stamp": (run_stamp, True),
        "abspath": (abspath, False),
    }
    for name, (function, cached) in resolvers.items():
        if not OmegaConf.has_resolver(name):
            OmegaConf.register_new_resolver(name, function, use_cache=cached)
