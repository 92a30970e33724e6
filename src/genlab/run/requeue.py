"""Sweep jobs that come back by themselves: submitit's launchers, each job with `resume=auto`.

On the cluster's notice (SIGUSR2, `signal_delay_s` before the end), genlab's SafeStop saves
`last.ckpt` after the running batch and records the run as interrupted; then submitit's handler
has the launcher's `checkpoint` resubmit the same job, requeues the SLURM job and exits. The job
that comes back composes the same config into the same job directory and, with `resume=auto`,
continues from `last.ckpt` (as does a job SLURM requeues by itself, when its node fails).
"""

from __future__ import annotations

from typing import Any

from hydra_plugins.hydra_submitit_launcher.submitit_launcher import LocalLauncher, SlurmLauncher


class _Resuming:
    def launch(self, job_overrides: Any, initial_job_idx: int) -> Any:
        """Every job with resume=auto from its first submission: SLURM may also requeue a job by
        itself (its node failed), and the job then comes back as it was first submitted."""
        resuming = [
            [*(o for o in job if o.split("=")[0] != "resume"), "resume=auto"]
            for job in job_overrides
        ]
        return super().launch(resuming, initial_job_idx)


class RequeueingSlurmLauncher(_Resuming, SlurmLauncher):
    """hydra/launcher=slurm: each job a SLURM job, requeued on preemption or time-out."""


class RequeueingLocalLauncher(_Resuming, LocalLauncher):
    """The same on this machine (submitit's local executor, which requeues a job by starting
    it again): what the tests preempt."""
