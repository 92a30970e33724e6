"""hydra/launcher=local_parallel: a sweep's jobs `n_jobs` at a time on this machine, each in a
fresh process pinned to its own GPU(s) and its own share of the CPU cores.

Hydra's basic launcher runs the jobs one after another in its own process. Its joblib launcher
reuses worker processes, and a process keeps the GPUs CUDA saw when it first used them, so it
cannot give each job a GPU of its own. Here every job is a new Python process whose
CUDA_VISIBLE_DEVICES is set before it starts and whose CPU affinity is set before it imports
torch (genlab's threads=auto then takes that share: genlab.run.threads). In that process the job
runs as under Hydra's own launchers (the sweep's Hydra state, the job's config composed from
the sweep's, `run_job` with the sweep's directory), so the sweep summary and run records are the
same. The jobs run in sessions of their own: Ctrl+C (or SIGTERM) reaches only the sweep's
process, which passes it on to each running job once (a job then saves a checkpoint and stops; a
second Ctrl+C stops them at once) and starts no more.

Hydra instantiates launchers only from the `hydra_plugins` package: the class it finds is
`hydra_plugins.genlab_launcher.LocalParallelLauncher`, this one under that name.
"""

from __future__ import annotations

import logging
import os
import pickle
import signal
import subprocess
import sys
import tempfile
import threading
import time
import traceback
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from hydra.core.hydra_config import HydraConfig
from hydra.core.plugins import Plugins
from hydra.core.singleton import Singleton
from hydra.core.utils import (
    JobReturn,
    JobStatus,
    configure_log,
    filter_overrides,
    run_job,
    setup_globals,
)
from hydra.plugins.launcher import Launcher
from hydra.types import HydraContext, TaskFunction
from omegaconf import DictConfig, open_dict

from genlab.config.machine import cuda_devices
from genlab.errors import GenlabError, RunInterrupted
from genlab.run.threads import usable_cores

log = logging.getLogger(__name__)

POLL_SECONDS = 0.2
# A job's process: `python -c JOB_MAIN <job file> <result file> <CPU cores>`.
JOB_MAIN = "from genlab.run.launcher import job_process; job_process()"


def visible_gpus() -> list[str]:
    """The ids of the CUDA GPUs this process may use, as CUDA_VISIBLE_DEVICES names them."""
    count = cuda_devices()
    visible = os.environ.get("CUDA_VISIBLE_DEVICES")
    ids = visible.split(",") if visible is not None else [str(i) for i in range(count)]
    return [i.strip() for i in ids][:count]


def _share(items: list, k: int, n: int) -> list:
    """The k-th of n contiguous blocks of `items`; with fewer items than n, one item in turn."""
    if len(items) < n:
        return [items[k % len(items)]] if items else []
    return items[k * len(items) // n : (k + 1) * len(items) // n]


def job_places(n_jobs: int | None) -> list[tuple[list[int], list[str]]]:
    """(CPU cores, GPU ids) for each of the jobs that run at once: this process's cores and
    GPUs dealt out in blocks. n_jobs None: one job per GPU, or per 4 cores without a GPU."""
    cores, gpus = usable_cores(), visible_gpus()
    n = n_jobs or len(gpus) or max(1, len(cores) // 4)
    return [(_share(cores, k, n), _share(gpus, k, n)) for k in range(n)]


class JobTraceback(Exception):
    """Where a job's error was raised, in the job's process: the cause of the error the sweep
    reports (as concurrent.futures shows a worker's)."""

    def __str__(self) -> str:
        return f"the job's traceback:\n{self.args[0]}"


class _StopRequest(Exception):
    def __init__(self, signum: int):
        super().__init__(signum)
        self.signum = signum


@contextmanager
def _stop_requests() -> Iterator[None]:
    """SIGINT and SIGTERM raise _StopRequest while the jobs run (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def request(signum: int, frame: Any) -> None:
        raise _StopRequest(signum)

    previous = {s: signal.signal(s, request) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class LocalParallelLauncher(Launcher):
    """Runs a sweep's jobs `n_jobs` at a time, each in its own pinned process; returns their
    JobReturns in job order, a failed job among them as failed (the others still run)."""

    def __init__(self, n_jobs: int | None = None) -> None:
        if n_jobs is not None and int(n_jobs) < 1:
            raise GenlabError(f"hydra.launcher.n_jobs={n_jobs}: a number of jobs >= 1, or null")
        self.n_jobs = None if n_jobs is None else int(n_jobs)
        self.config: DictConfig | None = None
        self.hydra_context: HydraContext | None = None
        self.task_function: TaskFunction | None = None

    def setup(
        self, *, hydra_context: HydraContext, task_function: TaskFunction, config: DictConfig
    ) -> None:
        self.config = config
        self.hydra_context = hydra_context
        self.task_function = task_function

    def launch(
        self, job_overrides: Sequence[Sequence[str]], initial_job_idx: int
    ) -> Sequence[JobReturn]:
        assert self.config is not None and self.hydra_context is not None
        setup_globals()
        configure_log(self.config.hydra.hydra_logging, self.config.hydra.verbose)
        # Resolved here, so that every job gets this directory (and its ${now:...}) from the
        # config's resolver cache.
        Path(str(self.config.hydra.sweep.dir)).mkdir(parents=True, exist_ok=True)
        places = job_places(self.n_jobs)
        log.info(f"Launching {len(job_overrides)} jobs locally, {len(places)} at a time")
        jobs = [(initial_job_idx + i, list(o)) for i, o in enumerate(job_overrides)]
        for idx, overrides in jobs:
            log.info(f"\t#{idx} : {' '.join(filter_overrides(overrides))}")
        # Hydra's state for the jobs' processes, less the OmegaConf resolvers (functions, which
        # pickle cannot carry): each job's process registers Hydra's and genlab's again.
        state = (
            self.hydra_context,
            self.task_function,
            self.config,
            Singleton.get_state()["instances"],
            sys.argv,
        )
        with tempfile.TemporaryDirectory(prefix="genlab-sweep-") as tmp, _stop_requests():
            return _Jobs(Path(tmp), pickle.dumps(state), places).run(jobs)


class _Jobs:
    """The sweep's jobs, each started in a free place when there is one."""

    def __init__(self, folder: Path, state: bytes, places: list[tuple[list[int], list[str]]]):
        self.folder, self.state, self.places = folder, state, places
        self.running: dict[subprocess.Popen, tuple[int, list[str], int]] = {}

    def run(self, jobs: list[tuple[int, list[str]]]) -> list[JobReturn]:
        pending, free = list(jobs), list(range(len(self.places)))
        results: dict[int, JobReturn] = {}
        try:
            while pending or self.running:
                while pending and free:
                    idx, overrides = pending.pop(0)
                    place = free.pop(0)
                    with _stop_requests_held():  # a started job is always one told to stop
                        process = self._start(idx, overrides, place)
                        self.running[process] = (idx, overrides, place)
                time.sleep(POLL_SECONDS)
                for process in [p for p in self.running if p.poll() is not None]:
                    idx, overrides, place = self.running.pop(process)
                    free.append(place)
                    results[idx] = self._result(idx, overrides, process.returncode)
        except _StopRequest as request:
            self._stop(request.signum, len(pending))
            raise RunInterrupted(128 + request.signum) from None
        return [results[idx] for idx, _ in jobs]

    def _start(self, idx: int, overrides: list[str], place: int) -> subprocess.Popen:
        cores, gpus = self.places[place]
        job_file = self.folder / f"job-{idx}.pkl"
        job_file.write_bytes(pickle.dumps((self.state, idx, overrides)))
        env = dict(os.environ)
        if gpus:
            env["CUDA_VISIBLE_DEVICES"] = ",".join(gpus)
        result_file = self.folder / f"result-{idx}.pkl"
        command = [sys.executable, "-c", JOB_MAIN, str(job_file), str(result_file)]
        command.append(",".join(map(str, cores)))
        return subprocess.Popen(command, env=env, start_new_session=True)

    def _result(self, idx: int, overrides: list[str], returncode: int) -> JobReturn:
        result_file = self.folder / f"result-{idx}.pkl"
        if result_file.is_file():
            result, trace = pickle.loads(result_file.read_bytes())
            if trace:  # pickle keeps an error, not where it was raised
                result._return_value.__cause__ = JobTraceback(trace)
            return result
        # Killed (out of memory, say) or stopped before Hydra could report on it.
        error = ChildProcessError(f"job {idx}'s process ended with exit code {returncode}")
        return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=error)

    def _stop(self, signum: int, not_started: int) -> None:
        """Pass the stop request on to each running job and wait for them all to end; a second
        request is passed on too."""
        name = signal.Signals(signum).name
        try:
            print(
                f"genlab: {name}: stopping the sweep's {len(self.running)} running jobs; "
                f"{not_started} not started",
                file=sys.stderr,
                flush=True,
            )
        except _StopRequest as again:  # a second request already: pass that one on
            signum = again.signum
        while self.running:
            try:
                for process in self.running:
                    if process.poll() is None:
                        process.send_signal(signum)
                for process in list(self.running):
                    process.wait()
                    self.running.pop(process)
            except _StopRequest as again:
                signum = again.signum


class _JobEndsInTurn:
    """Hydra's callbacks for one job, whose `on_job_end` waits for any other job's to finish
    (a lock on the sweep directory): each summary.csv a job writes then has every job that
    finished before it."""

    def __init__(self, callbacks: Any, sweep_dir: str):
        self.callbacks, self.sweep_dir = callbacks, sweep_dir

    def on_job_start(self, **kwargs: Any) -> None:
        self.callbacks.on_job_start(**kwargs)

    def on_job_end(self, **kwargs: Any) -> None:
        import fcntl  # POSIX, as are sessions

        folder = os.open(self.sweep_dir, os.O_RDONLY)
        try:
            fcntl.flock(folder, fcntl.LOCK_EX)
            self.callbacks.on_job_end(**kwargs)
        finally:
            os.close(folder)  # and with it the lock


def _stop_with_parent() -> None:
    """A job's process is in a session of its own: should the sweep's process die without
    passing a stop on (kill -9), the job stops as if sent SIGTERM."""
    parent = os.getppid()

    def watch() -> None:
        while os.getppid() == parent:
            time.sleep(1)
        os.kill(os.getpid(), signal.SIGTERM)

    threading.Thread(target=watch, daemon=True).start()


@contextmanager
def _stop_requests_held() -> Iterator[None]:
    """Ctrl+C and SIGTERM wait while the body runs (they are delivered when it ends). A process
    started in it inherits the blocked signals: `job_process` unblocks them."""
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _STOP_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


_STOP_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def job_process() -> None:
    """A job's process (see JOB_MAIN): pinned to its CPU cores before anything imports torch,
    then the job, whose JobReturn it writes for the sweep's process."""
    signal.pthread_sigmask(signal.SIG_UNBLOCK, _STOP_SIGNALS)  # blocked while it was started
    job_file, result_file, cores = sys.argv[1:]
    if cores and hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, [int(c) for c in cores.split(",")])
    _stop_with_parent()
    # Hydra's plugin scan executes the plugin modules again: done before the state is unpickled,
    # so that the classes in it stay those of the modules (and the job's result pickles).
    plugins = Plugins.instance()
    state, idx, overrides = pickle.loads(Path(job_file).read_bytes())
    hydra_context, task_function, config, instances, argv = pickle.loads(state)
    sys.argv = argv  # what the job records as its command: the sweep's
    instances[Plugins] = plugins
    result = _run(hydra_context, task_function, config, instances, idx, overrides)
    error = result._return_value if result.status == JobStatus.FAILED else None
    trace = "".join(traceback.format_exception(error)) if error is not None else None
    try:
        data = pickle.dumps((result, trace))
    except Exception:  # an error that cannot be pickled: its text
        result.return_value = RuntimeError(repr(error))
        data = pickle.dumps((result, trace))
    Path(result_file).write_bytes(data)


def _run(
    hydra_context: HydraContext,
    task_function: TaskFunction,
    config: DictConfig,
    instances: dict,
    idx: int,
    overrides: list[str],
) -> JobReturn:
    """One job as Hydra's launchers run it: their state, the job's config, `run_job`."""
    from omegaconf.basecontainer import BaseContainer

    from genlab.run.job import prepare

    try:
        Singleton.set_state(
            {"instances": instances, "omegaconf_resolvers": BaseContainer._resolvers}
        )
        setup_globals()
        prepare()
        sweep_config = hydra_context.config_loader.load_sweep_config(config, overrides)
        with open_dict(sweep_config):
            sweep_config.hydra.job.id = idx
            sweep_config.hydra.job.num = idx
        HydraConfig.instance().set_config(sweep_config)
        # Absolute: with hydra.job.chdir=true, on_job_end runs in the job's folder.
        sweep_dir = os.path.abspath(str(config.hydra.sweep.dir))
        callbacks = _JobEndsInTurn(hydra_context.callbacks, sweep_dir)
        return run_job(
            hydra_context=HydraContext(hydra_context.config_loader, callbacks),
            task_function=_saying_where(task_function, idx),
            config=sweep_config,
            job_dir_key="hydra.sweep.dir",
            job_subdir_key="hydra.sweep.subdir",
        )
    except Exception as err:  # before the job could start: Hydra could not compose its config
        return JobReturn(overrides=overrides, status=JobStatus.FAILED, _return_value=err)


def _saying_where(task_function: TaskFunction, idx: int) -> TaskFunction:
    """The task, after a line in the job's log: its process and the cores and GPUs it got."""

    def task(cfg: DictConfig) -> Any:
        cores = ",".join(map(str, usable_cores()))
        gpus = os.environ.get("CUDA_VISIBLE_DEVICES") or "none"
        log.info(f"job {idx} runs in process {os.getpid()} on CPU cores {cores}, GPUs {gpus}")
        return task_function(cfg)

    return task
