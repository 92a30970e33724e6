"""Refusing, before Hydra makes it, a run or sweep directory that cannot be made (a path through a
file, a folder without write permission): Hydra would fail with a traceback."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.experimental.callback import Callback
from omegaconf import DictConfig, OmegaConf

from genlab.errors import GenlabError, user_errors_exit
from genlab.utils.atomic import creation_problem


class RunDirGuard(Callback):
    """Hydra callback (conf/hydra/default.yaml): checks `hydra.run.dir` (or `hydra.sweep.dir`)
    before Hydra creates it."""

    def on_run_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.run.dir", "run_dir or paths.log_dir")

    def on_multirun_start(self, config: DictConfig, **kwargs: Any) -> None:
        self._check(config, "hydra.sweep.dir", "hydra.sweep.dir or paths.log_dir")

    @staticmethod
    def _check(config: DictConfig, key: str, keys_to_set: str) -> None:
        with user_errors_exit():
            # As Hydra does before it makes the directory: its own settings resolve from here.
            HydraConfig.instance().set_config(config)
            folder = Path(str(OmegaConf.select(config, key)))
            problem = creation_problem(folder)
            if problem:
                raise GenlabError(
                    f"cannot make the run directory {folder}: {problem}; set {keys_to_set} to a "
                    f"folder you can write to"
                )
