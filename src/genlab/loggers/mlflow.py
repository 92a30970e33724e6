"""MLflow: the flattened config as params, tags, images over steps, text samples and the run's
files as artifacts, final metrics. With a local store (SQLite, the default) a run's artifacts
are files in its run directory's `mlflow/`, which MLflow's artifact folder for the run links to."""

from __future__ import annotations

import contextlib
import logging
import os
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import Any

import numpy as np
from lightning.pytorch.loggers import MLFlowLogger

from genlab.loggers.base import LoggerAdapter, TrackedRun

# The run directory's folder of the run's artifacts (genlab.run.run_dir.RunDir.OUTPUTS).
ARTIFACTS = "mlflow"
# The MLflow 3 UI opens an experiment of this kind on its training runs, not on GenAI traces.
_EXPERIMENT_KIND = ("mlflow.experimentKind", "custom_model_development")
# MLflow's limits on a param's value, and on params per request.
_MAX_PARAM_LENGTH = 6000
_PARAMS_PER_BATCH = 100
# With `synchronous: false`, the metrics queued over this many seconds go to the store in one
# write, and the queue stops at once when the run ends (unbuffered, each log call is a commit of
# its own, and stopping waits out the queue's one-second poll). The variable is MLflow's; a value
# the user set is kept.
_BUFFER = ("MLFLOW_ASYNC_LOGGING_BUFFERING_SECONDS", "5")


def flatten(tree: Any, prefix: str = "") -> dict[str, Any]:
    """{"model": {"latent_dim": 2}} as {"model.latent_dim": 2}; lists stay values."""
    if not isinstance(tree, dict):
        return {prefix.rstrip("."): tree}
    flat: dict[str, Any] = {}
    for key, value in tree.items():
        flat.update(flatten(value, f"{prefix}{key}."))
    return flat


def _quiet_mlflow() -> None:
    """MLflow sets up a new database, and Lightning creates an experiment, with lines that ask
    nothing of the user. (Importing mlflow sets its loggers' level: it comes first.)"""
    import mlflow  # noqa: F401

    logging.getLogger("mlflow").setLevel(logging.WARNING)
    logging.getLogger("lightning.pytorch.loggers.mlflow").setLevel(logging.ERROR)


def _flush() -> None:
    """Wait for the metrics queued (`synchronous: false`) to be written."""
    import mlflow

    mlflow.flush_async_logging()


def _is_server(uri: str) -> bool:
    return uri.startswith(("http://", "https://"))


def _is_local_store(uri: str) -> bool:
    return uri.startswith(("sqlite:", "file:", "/"))


def _local_path(artifact_uri: str) -> Path | None:
    """The folder of a run's artifacts on this file system, if they are on it."""
    from mlflow.utils.file_utils import local_file_uri_to_path

    if not artifact_uri.startswith(("file:", "/")):
        return None
    return Path(local_file_uri_to_path(artifact_uri))


class MLflowAdapter(LoggerAdapter):
    logger_class = MLFlowLogger
    key = "mlflow"
    logger: MLFlowLogger

    @classmethod
    def settings(cls, node: dict[str, Any], run: TrackedRun) -> dict[str, Any]:
        """Experiment: the run's group (a sweep: one experiment); run name and tags; a resumed
        run continues its MLflow run in the same store; a new experiment in a local store keeps
        its artifact folders beside the database."""
        _quiet_mlflow()
        if node.get("synchronous") is False:
            os.environ.setdefault(*_BUFFER)
        uri = str(node.get("tracking_uri") or "")
        earlier = run.earlier.get(cls.key, {})
        found: dict[str, Any] = {
            "experiment_name": node.get("experiment_name") or run.group,
            "run_name": run.name,
            "tags": {**{tag: "" for tag in run.tags}, "genlab.run_dir": str(run.output_dir)},
        }
        if earlier.get("run_id") and earlier.get("tracking_uri") == uri:
            found["run_id"] = earlier["run_id"]
        if not node.get("artifact_location") and uri.startswith("sqlite:///"):
            store = Path(uri.removeprefix("sqlite:///")).parent
            found["artifact_location"] = str(store / "mlflow-artifacts")
        return found

    @classmethod
    def problem(cls, node: dict[str, Any]) -> str | None:
        """A tracking server that does not answer would make MLflow retry for minutes."""
        uri = str(node.get("tracking_uri") or "")
        if not _is_server(uri):
            return None
        try:
            with urllib.request.urlopen(f"{uri.rstrip('/')}/health", timeout=10):
                return None
        except urllib.error.HTTPError:
            return None  # an answer (behind a proxy or a path prefix, say): a server is there
        except (urllib.error.URLError, OSError) as err:
            reason = getattr(err, "reason", err)
            return (
                f"logger.mlflow.tracking_uri={uri}: no MLflow server answers there ({reason}); "
                "start one (mlflow server --host ... --port ...) or leave tracking_uri unset "
                "for the local database"
            )

    @property
    def _client(self):
        return self.logger.experiment

    def start(self, config: dict[str, Any], run: TrackedRun) -> dict[str, Any]:
        found = self._client.get_run(self.logger.run_id)
        experiment = self._client.get_experiment(found.info.experiment_id)
        if _EXPERIMENT_KIND[0] not in experiment.tags:
            self._client.set_experiment_tag(experiment.experiment_id, *_EXPERIMENT_KIND)
        if _is_local_store(self._client.tracking_uri):
            self._link_artifacts(found.info.artifact_uri, run.output_dir / ARTIFACTS)
        logged = found.data.params  # a resumed run keeps the params of its first segment
        params = [
            (key, str(value)[:_MAX_PARAM_LENGTH])
            for key, value in flatten(config).items()
            if key not in logged
        ]
        from mlflow.entities import Param

        for i in range(0, len(params), _PARAMS_PER_BATCH):
            batch = [Param(k, v) for k, v in params[i : i + _PARAMS_PER_BATCH]]
            self._client.log_batch(self.logger.run_id, params=batch)
        return {
            "tracking_uri": self._client.tracking_uri,
            "experiment_id": found.info.experiment_id,
            "run_id": found.info.run_id,
            "artifact_uri": found.info.artifact_uri,
        }

    @staticmethod
    def _link_artifacts(artifact_uri: str, folder: Path) -> None:
        """With a local store, MLflow's folder for the run's artifacts links to the run
        directory's mlflow/, so the run directory holds them (a run directory that was moved
        and continues gets the link pointed to its new place)."""
        linked = _local_path(artifact_uri)
        if linked is None or (linked.exists() and not linked.is_symlink()):
            return  # a cloud store's artifacts, or MLflow's own folder
        folder.mkdir(parents=True, exist_ok=True)
        if linked.is_symlink():
            if linked.resolve() == folder.resolve():
                return
            linked.unlink()
        linked.parent.mkdir(parents=True, exist_ok=True)
        linked.symlink_to(folder.resolve(), target_is_directory=True)

    def close(self, status: str) -> None:
        if not self.logger._initialized:  # no MLflow run was made (it failed before)
            return
        _flush()
        ended = {"completed": "FINISHED", "interrupted": "KILLED"}.get(status, "FAILED")
        self._client.set_terminated(self.logger.run_id, ended)

    def discard(self) -> None:
        if not self.logger._initialized:
            return
        run = self._client.get_run(self.logger.run_id)
        self._client.delete_run(run.info.run_id)
        linked = _local_path(run.info.artifact_uri)
        if linked is not None and linked.is_symlink():
            linked.unlink()
            with contextlib.suppress(OSError):
                linked.parent.rmdir()

    def log_image(self, tag: str, image: np.ndarray, step: int) -> None:
        self._client.log_image(self.logger.run_id, image, key=tag, step=step)

    def log_texts(self, tag: str, rows: list[tuple[str, str]], step: int) -> None:
        text = "\n\n".join(f"**{prompt}**{continuation}" for prompt, continuation in rows)
        self._client.log_text(self.logger.run_id, text, f"{tag}/step-{step:06d}.md")

    def finish(self, metrics: dict[str, float], params: dict[str, Any], files: list[Path]) -> None:
        """The final metrics of metrics.json that the run does not hold yet (the best values,
        those of an earlier segment), and the run's files as artifacts."""
        from mlflow.entities import Metric

        run_id = self.logger.run_id
        _flush()
        logged = self._client.get_run(run_id).data.metrics
        # At the last step Lightning logged at (it logs "epoch" with every metric).
        step = max((m.step for m in self._client.get_metric_history(run_id, "epoch")), default=0)
        now = int(time.time() * 1000)
        # A continued run's best value changes without being logged again.
        new = [Metric(k, v, now, step) for k, v in metrics.items() if logged.get(k) != v]
        if new:
            self._client.log_batch(run_id, metrics=new)
        for path in files:
            if path.is_file():
                self._client.log_artifact(run_id, str(path))
