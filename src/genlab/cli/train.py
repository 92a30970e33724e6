"""genlab-train: compose conf/train.yaml with the command line's overrides, then run the job.

genlab-train model=ae trainer.max_epochs=5      (also: python -m genlab)
genlab-train -m model=ae,vae seed=1,2           (a sweep)
"""

from __future__ import annotations

import hydra

from genlab.config.compose import CONFIG_PATH
from genlab.run.job import CONFIG_NAME, job, prepare

_hydra_main = hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name=CONFIG_NAME)(job)


def main() -> None:
    prepare()
    _hydra_main()


if __name__ == "__main__":
    main()
