"""genlab's launchers where Hydra looks for them: Hydra instantiates a launcher only from a class
of the `hydra_plugins` namespace package (conf/hydra/launcher/local_parallel.yaml and slurm.yaml
name these). The launchers themselves are genlab.run.launcher's and genlab.run.requeue's."""

from genlab.run import launcher as _launcher
from genlab.run import requeue as _requeue


class LocalParallelLauncher(_launcher.LocalParallelLauncher):
    """hydra/launcher=local_parallel: genlab.run.launcher.LocalParallelLauncher."""


class RequeueingSlurmLauncher(_requeue.RequeueingSlurmLauncher):
    """hydra/launcher=slurm: genlab.run.requeue.RequeueingSlurmLauncher."""


class RequeueingLocalLauncher(_requeue.RequeueingLocalLauncher):
    """genlab.run.requeue.RequeueingLocalLauncher (the tests' stand-in for SLURM)."""
