"""Experiment trackers, each read back through its own client: MLflow from a real SQLite store and
from a real `mlflow server` on 127.0.0.1, W&B from the files of an offline run, TensorBoard from
its event files, CSV from its folder. Every figure callback writes to every logger."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import struct
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import torch
from mlflow.tracking import MlflowClient
from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

DIGITS = ["trainer.max_epochs=3", "model.latent_dim=3"]


def read_json(path: Path) -> dict:
    return json.loads(path.read_text())


def mlflow_run(run_dir: Path):
    """The MLflow client and run that run.json names."""
    tracker = read_json(run_dir / "run.json")["trackers"]["mlflow"]
    client = MlflowClient(tracker["tracking_uri"])
    return client, client.get_run(tracker["run_id"])


def history(client: MlflowClient, run_id: str, key: str) -> list[tuple[int, float]]:
    return sorted((m.step, m.value) for m in client.get_metric_history(run_id, key))


def tensorboard_scalars(folder: Path, tag: str) -> list[tuple[int, float]]:
    events = EventAccumulator(str(folder), size_guidance={"scalars": 0})
    events.Reload()
    return [(e.step, e.value) for e in events.Scalars(tag)]


def artifact_paths(client: MlflowClient, run_id: str, folder: str | None = None) -> list[str]:
    found = []
    for entry in client.list_artifacts(run_id, folder):
        found += artifact_paths(client, run_id, entry.path) if entry.is_dir else [entry.path]
    return found


def test_mlflow_store_holds_params_metrics_tags_and_artifacts(train_cli, tmp_path):
    outputs = tmp_path / "outputs"
    run_dir = outputs / "alone"
    result = train_cli(
        "logger=mlflow",
        *DIGITS,
        "tags=[baseline,digits]",
        f"paths.log_dir={outputs}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    console = result.stdout + result.stderr
    assert "database tables" not in console and "Creating it" not in console
    client, run = mlflow_run(run_dir)
    assert run.info.status == "FINISHED" and run.info.run_name == "alone"
    experiment = client.get_experiment(run.info.experiment_id)
    assert experiment.name == "vae_digits"
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"  # not GenAI
    assert str(outputs / "mlflow.db") in client.tracking_uri
    # No run of MLflow's own was started on the side (it would be ended, or retried, at exit).
    import mlflow

    assert mlflow.active_run() is None and not client.search_runs(["0"])

    # Params: the whole resolved config, flattened with dots.
    params = run.data.params
    assert params["model.latent_dim"] == "3" and params["trainer.max_epochs"] == "3"
    assert params["data._target_"] == "genlab.data.digits.DigitsDataModule"
    assert {"baseline", "digits"} <= set(run.data.tags)
    assert run.data.tags["genlab.run_dir"] == str(run_dir)

    # Metrics: one val/loss per epoch; the final values are metrics.json's.
    metrics = read_json(run_dir / "metrics.json")
    val_loss = history(client, run.info.run_id, "val/loss")
    assert len(val_loss) == 3 and len({step for step, _ in val_loss}) == 3
    assert val_loss[-1][1] == metrics["val/loss"]
    for key in ("test/loss", "val/loss_best", "train/loss"):
        assert run.data.metrics[key] == metrics[key], key

    # Artifacts: the run's files and image grids, kept in the run directory's mlflow/.
    artifacts = artifact_paths(client, run.info.run_id)
    assert {"config.yaml", "run.json", "metrics.json"} <= set(artifacts)
    grids = [p for p in artifacts if "samples" in p and p.endswith(".png")]
    assert len(grids) == 3  # one per epoch
    for name in ("config.yaml", grids[0]):
        assert (run_dir / "mlflow" / name).is_file()
    fetched = Path(client.download_artifacts(run.info.run_id, "config.yaml", str(tmp_path)))
    assert fetched.read_text() == (run_dir / "config.yaml").read_text()

    # The same run with TensorBoard and CSV beside MLflow: the same curve everywhere.
    both = outputs / "three"
    result = train_cli(
        "logger=[tensorboard,mlflow,csv]",
        *DIGITS,
        f"paths.log_dir={outputs}",
        f"hydra.run.dir={both}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client, run = mlflow_run(both)
    tensorboard = tensorboard_scalars(both / "tensorboard", "val/loss")
    as_float32 = [(s, float(torch.tensor(v, dtype=torch.float32))) for s, v in val_loss]
    assert tensorboard == as_float32
    assert history(client, run.info.run_id, "val/loss") == val_loss
    for tag in ("samples", "reconstructions"):
        assert len(list((both / "csv" / "images" / tag).glob("step-*.png"))) == 3
    events = EventAccumulator(str(both / "tensorboard"), size_guidance={"images": 0})
    events.Reload()
    assert {"images/samples", "images/reconstructions"} <= set(events.Tags()["images"])


@pytest.fixture
def offline_wandb(tmp_path, monkeypatch):
    """W&B as on a machine without an API key: offline, its settings and caches in tmp_path."""
    monkeypatch.delenv("WANDB_API_KEY", raising=False)
    monkeypatch.setenv("WANDB_MODE", "offline")  # restored afterwards (Lightning sets it)
    monkeypatch.setenv("HOME", str(tmp_path))  # no ~/.netrc login
    for name in ("WANDB_CACHE_DIR", "WANDB_CONFIG_DIR", "WANDB_DATA_DIR"):
        monkeypatch.setenv(name, str(tmp_path / "wandb-home"))


def wandb_history(offline: Path) -> list[dict]:
    """The rows a W&B run logged, by key (an image or a table as its fields: key/_type, ...)."""
    return [
        {
            item.key or "/".join(item.nested_key): json.loads(item.value_json)
            for item in record.history.item
        }
        for record in finished_wandb_run(offline)
        if record.WhichOneof("record_type") == "history"
    ]


def test_text_samples_and_attention_figures_reach_every_logger(train_cli, tmp_path, offline_wandb):
    words = ["the", "king", "shall", "speak", "to", "Romeo", "and", "Juliet", "of", "love"]
    lines = [" ".join(words[(i * 7 + j) % 10] for j in range(9)) + "." for i in range(120)]
    corpus = tmp_path / "corpus.txt"
    corpus.write_text("\n".join(lines), encoding="utf-8")
    run_dir = tmp_path / "gpt2"
    result = train_cli(
        "model=gpt2",
        "data=text",
        f"data.path={corpus}",
        "model.n_layer=1",
        "model.n_head=2",
        "model.n_embd=32",
        "model.n_positions=32",
        "data.block_size=16",
        "data.batch_size=8",
        "model.sample_prompts=[the king]",
        "model.sample_max_new_tokens=4",
        "callbacks=attention",
        "trainer.max_epochs=1",
        "logger=[tensorboard,mlflow,csv,wandb]",
        f"paths.log_dir={tmp_path / 'outputs'}",
        f"paths.cache_dir={tmp_path / 'cache'}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    events = EventAccumulator(
        str(run_dir / "tensorboard"), size_guidance={"images": 0, "tensors": 0}
    )
    events.Reload()
    attention = [t for t in events.Tags()["images"] if t.startswith("attention/")]
    assert attention and "samples/0/text_summary" in events.Tags()["tensors"]

    client, run = mlflow_run(run_dir)
    artifacts = artifact_paths(client, run.info.run_id)
    texts = [p for p in artifacts if p.startswith("samples/") and p.endswith(".md")]
    assert len(texts) == 1 and "**the king**" in (run_dir / "mlflow" / texts[0]).read_text()
    for tag in attention:
        key = tag.replace("/", "~")
        assert any(key in p and p.endswith(".png") for p in artifacts), tag
        assert list((run_dir / "csv" / tag).glob("step-*.png")), tag

    table = (run_dir / "csv" / "samples.csv").read_text().splitlines()
    assert table[0] == "step,prompt,continuation" and table[1].split(",")[1] == "the king"

    offline = Path(read_json(run_dir / "run.json")["trackers"]["wandb"]["dir"]).parent
    logged = {key: value for row in wandb_history(offline) for key, value in row.items()}
    assert logged["samples/_type"] == "table-file" and logged["samples/ncols"] == 2
    for tag in attention:
        assert logged[f"{tag}/_type"] == "images/separated", tag


def test_a_sweep_is_one_mlflow_experiment_with_a_run_per_job(train_cli, tmp_path):
    sweep = tmp_path / "outputs" / "multiruns" / "grid"
    result = train_cli(
        "-m",
        "logger=mlflow",
        "trainer.max_epochs=1",
        "model.latent_dim=2,4",
        "model.beta=0.5,1.0",
        "tags=[grid]",
        f"paths.log_dir={tmp_path / 'outputs'}",
        f"hydra.sweep.dir={sweep}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("multiruns/grid")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 4
    seen = set()
    for run in runs:
        job = Path(run.data.tags["genlab.run_dir"])
        overrides = dict(o.split("=", 1) for o in read_json(job / "run.json")["overrides"])
        assert run.data.params["model.latent_dim"] == overrides["model.latent_dim"]
        assert run.data.params["model.beta"] == overrides["model.beta"]
        assert run.info.run_name.startswith(f"{job.name}_") and "grid" in run.data.tags
        seen.add((overrides["model.latent_dim"], overrides["model.beta"]))
    assert seen == {("2", "0.5"), ("2", "1.0"), ("4", "0.5"), ("4", "1.0")}
    summary = (sweep / "summary.csv").read_text().splitlines()
    assert summary[0].startswith("job,status,overrides,tags,") and ",grid," in summary[1]


def test_a_moved_run_continues_its_mlflow_run_with_its_artifacts(train_cli, tmp_path):
    first_place = tmp_path / "outputs" / "run"
    common = ["logger=mlflow", f"paths.log_dir={tmp_path / 'outputs'}"]
    first = train_cli(*common, "trainer.max_epochs=2", f"hydra.run.dir={first_place}", cwd=tmp_path)
    assert first.returncode == 0, first.stderr[-3000:]
    _, before = mlflow_run(first_place)
    run_dir = first_place.rename(tmp_path / "outputs" / "moved")
    again = train_cli(
        *common, "trainer.max_epochs=3", f"run_dir={run_dir}", "ckpt_path=last", cwd=tmp_path
    )
    assert again.returncode == 0, again.stderr[-3000:]
    client, after = mlflow_run(run_dir)
    assert after.info.run_id == before.info.run_id
    steps = [step for step, _ in history(client, after.info.run_id, "val/loss")]
    assert len(steps) == 3 and steps == sorted(set(steps))
    assert after.data.params["trainer.max_epochs"] == "2"  # the params of its first segment
    metrics = read_json(run_dir / "metrics.json")
    for key in ("test/loss", "val/loss_best"):
        assert after.data.metrics[key] == metrics[key], key
    assert metrics["val/loss_best"] < before.data.metrics["val/loss_best"]
    # MLflow's artifact folder for the run links to the run directory in its new place.
    artifacts = Path(after.info.artifact_uri)
    assert artifacts.is_symlink() and artifacts.resolve() == (run_dir / "mlflow").resolve()
    grids = [p for p in artifact_paths(client, after.info.run_id) if "samples" in p]
    assert len([p for p in grids if p.endswith(".png")]) == 3


def test_a_run_that_fails_before_it_saved_anything_leaves_no_mlflow_run(train_cli, tmp_path):
    from mlflow.entities import ViewType

    (tmp_path / "x.txt").write_text("hello " * 500)
    run_dir = tmp_path / "outputs" / "run"
    result = train_cli(
        "logger=mlflow",
        "model=gpt2",
        "data=text",
        f"data.path={tmp_path / 'x.txt'}",
        f"model.pretrained={tmp_path / 'nowhere'}",  # fails while the model is built
        f"paths.log_dir={tmp_path / 'outputs'}",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 2, result.stderr[-2000:]
    assert not any(p.is_file() for p in run_dir.rglob("*"))
    client = MlflowClient(f"sqlite:///{tmp_path / 'outputs' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("gpt2_text")
    deleted = client.search_runs([experiment.experiment_id], run_view_type=ViewType.DELETED_ONLY)
    assert len(deleted) == 1 and not client.search_runs([experiment.experiment_id])
    assert deleted[0].info.status == "FAILED"
    assert not list((tmp_path / "outputs" / "mlflow-artifacts").iterdir())


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextlib.contextmanager
def mlflow_server(folder: Path):
    """A real `mlflow server` on a free port of 127.0.0.1, with its own store and artifacts."""
    port = _free_port()
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--workers",
        "1",
        "--backend-store-uri",
        f"sqlite:///{folder / 'server.db'}",
        "--artifacts-destination",
        str(folder / "artifacts"),
    ]
    log = (folder / "server.log").open("w")
    server = subprocess.Popen(command, cwd=folder, stdout=log, stderr=log, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 180
        while True:
            with (
                contextlib.suppress(OSError),
                urllib.request.urlopen(f"{uri}/health", timeout=2) as answer,
            ):
                if answer.status == 200:
                    break
            assert server.poll() is None, (folder / "server.log").read_text()[-2000:]
            assert time.monotonic() < deadline, "mlflow server did not start in 180 s"
            time.sleep(0.5)
        yield uri
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        log.close()


def test_runs_are_logged_to_a_real_mlflow_server(train_cli, tmp_path):
    folder = tmp_path / "server"
    folder.mkdir()
    with mlflow_server(folder) as uri:
        run_dir = tmp_path / "run"
        result = train_cli(
            "logger=mlflow",
            f"logger.mlflow.tracking_uri={uri}",
            "trainer.max_epochs=2",
            "tags=[served]",
            f"hydra.run.dir={run_dir}",
            cwd=tmp_path,
        )
        assert result.returncode == 0, result.stderr[-3000:]
        client, run = mlflow_run(run_dir)
        assert client.tracking_uri == uri
        assert run.data.params["model.latent_dim"] == "2" and "served" in run.data.tags
        metrics = read_json(run_dir / "metrics.json")
        assert run.data.metrics["test/loss"] == metrics["test/loss"]
        assert len(history(client, run.info.run_id, "val/loss")) == 2
        assert {"config.yaml", "metrics.json"} <= set(artifact_paths(client, run.info.run_id))
        # The server holds the artifacts; the run directory has no copy to link to.
        assert (folder / "artifacts").is_dir() and not (run_dir / "mlflow").exists()
    # Stopped: the next run is refused at once, in one line, and leaves no run behind.
    result = train_cli(
        "logger=mlflow",
        f"logger.mlflow.tracking_uri={uri}",
        f"hydra.run.dir={tmp_path / 'refused'}",
        cwd=tmp_path,
    )
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "no MLflow server answers there" in result.stderr
    assert not (tmp_path / "refused").exists()


def wandb_records(path: Path):
    """The records of a W&B run file (`run-<id>.wandb`), parsed with W&B's own protobuf schema.

    The file is a LevelDB-style log: a 7-byte header (":W&B", magic 0xBEE1, version 0), then
    32 KiB blocks of chunks, each with a 7-byte header (CRC-32C, length, type: 1 full, 2 first,
    3 middle, 4 last); a block's last < 7 bytes are padding.
    """
    from wandb.proto import wandb_internal_pb2

    data = path.read_bytes()
    assert data[:4] == b":W&B" and struct.unpack("<HB", data[4:7]) == (0xBEE1, 0)
    block = 32768
    offset, pending = 7, b""
    while offset + 7 <= len(data):
        left = block - offset % block
        if left < 7:
            offset += left
            continue
        _, length, kind = struct.unpack("<IHB", data[offset : offset + 7])
        chunk = data[offset + 7 : offset + 7 + length]
        offset += 7 + length
        if kind == 0 and length == 0:
            continue  # zero-filled tail of a block
        pending = chunk if kind in (1, 2) else pending + chunk
        if kind in (1, 4):
            record = wandb_internal_pb2.Record()
            record.ParseFromString(pending)
            yield record


def finished_wandb_run(offline: Path, timeout: float = 30.0) -> list:
    """The records of an offline run's file once W&B has written its last one ("exit"): its
    writer process may still be flushing the file when `finish` has returned."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            records = list(wandb_records(next(offline.glob("run-*.wandb"))))
        except Exception:  # a chunk cut short: the writer is still at it
            records = []
        done = any(r.WhichOneof("record_type") == "exit" for r in records)
        if done or time.monotonic() > deadline:
            return records
        time.sleep(0.2)


def test_wandb_offline_run_holds_config_metrics_tags_and_images(train_cli, tmp_path, offline_wandb):
    run_dir = tmp_path / "run"
    result = train_cli(
        "logger=wandb",
        "trainer.max_epochs=2",
        "tags=[offline]",
        f"hydra.run.dir={run_dir}",
        cwd=tmp_path,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    tracker = read_json(run_dir / "run.json")["trackers"]["wandb"]
    assert tracker["offline"] is True
    offline = Path(tracker["dir"]).parent
    assert offline.parent == run_dir / "wandb" and offline.name.startswith("offline-run-")

    records = finished_wandb_run(offline)
    run = next(r.run for r in records if r.WhichOneof("record_type") == "run")
    assert list(run.tags) == ["offline"] and run.run_group == "vae_digits"
    assert run.display_name == "run" and run.run_id == tracker["id"]
    config = {}
    for record in records:
        if record.WhichOneof("record_type") == "config":
            config.update({item.key: json.loads(item.value_json) for item in record.config.update})
    assert config["model"]["latent_dim"] == 2 and config["tags"] == ["offline"]

    rows = wandb_history(offline)
    metrics = read_json(run_dir / "metrics.json")
    val_loss = [row["val/loss"] for row in rows if "val/loss" in row]
    assert len(val_loss) == 2 and val_loss[-1] == metrics["val/loss"]
    # An image is logged as its fields (width, filenames, ...) under its key.
    images = [row["images/samples/filenames"] for row in rows if "images/samples/_type" in row]
    assert len(images) == 2
    for filenames in images:
        assert (offline / "files" / filenames[0]).is_file(), filenames
    summary = {}
    for record in records:
        if record.WhichOneof("record_type") == "summary":
            summary.update({i.key: json.loads(i.value_json) for i in record.summary.update})
    assert summary["test/loss"] == metrics["test/loss"]


@pytest.mark.parametrize(
    ("offline", "environment", "netrc_host", "expected"),
    [
        ("auto", {}, None, True),
        ("auto", {"WANDB_API_KEY": "k"}, None, False),
        ("auto", {}, "api.wandb.ai", False),
        ("auto", {"WANDB_BASE_URL": "https://wandb.example.org"}, "api.wandb.ai", True),
        ("auto", {"WANDB_BASE_URL": "https://wandb.example.org"}, "wandb.example.org", False),
        ("auto", {"WANDB_API_KEY": "k", "WANDB_MODE": "offline"}, None, True),
        ("auto", {"WANDB_MODE": "online"}, None, False),
        (True, {"WANDB_API_KEY": "k"}, None, True),
        (False, {}, None, False),
    ],
)
def test_wandb_goes_online_only_with_a_key(
    tmp_path, monkeypatch, offline, environment, netrc_host, expected
):
    from genlab.loggers.wandb import runs_offline

    for name in ("WANDB_API_KEY", "WANDB_MODE", "WANDB_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    netrc = tmp_path / "netrc"
    netrc.write_text(f"machine {netrc_host} login user password key\n" if netrc_host else "")
    monkeypatch.setenv("NETRC", str(netrc))
    assert runs_offline({"offline": offline}) is expected


def test_a_logger_whose_package_is_missing_is_one_line(train_cli, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "mlflow", None)  # as if not installed
    result = train_cli("logger=many", f"hydra.run.dir={tmp_path / 'run'}", cwd=tmp_path)
    assert result.returncode == 2
    assert result.stderr == (
        "genlab: error: logger.mlflow needs the mlflow package, which is not installed: "
        "pip install 'genlab[mlflow]'\n"
    )
    assert not (tmp_path / "run").exists()
