"""Sweep jobs that come back by themselves: submitit's launchers with a `checkpoint` that
resubmits a preempted or timed-out job as itself, resuming.

On the cluster's notice (SIGUSR2, `signal_delay_s` before the end), genlab's SafeStop saves
`last.ckpt` after the running batch and records the run as interrupted; then submitit's handler
calls this `checkpoint`, requeues the SLURM job and exits. The job that comes back composes the
same config into the same job directory, plus `resume=auto`: it continues from `last.ckpt`.
"""

from __future__ import annotations

from typing import Any

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher


class _Resubmits:
    def checkpoint(self, sweep_overrides: list[str], *args: Any, **kwargs: Any) -> Any:
        """What submitit runs when the job is requeued: this job again, with resume=auto."""
        import submitit

        overrides = [o for o in sweep_overrides if o.split("=")[0] != "resume"]
        return submitit.helpers.DelayedSubmission(
            self, [*overrides, "resume=auto"], *args, **kwargs
        )


class RequeueingSlurmLauncher(_Resubmits, SlurmLauncher):
    """hydra/launcher=slurm: each job a SLURM job, requeued on preemption or time-out."""


class RequeueingLocalLauncher(_Resubmits, LocalLauncher):
    """The same on this machine (submitit's local executor, which requeues a job by starting
    it again): what the tests preempt."""
