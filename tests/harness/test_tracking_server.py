"""A real `mlflow server` on loopback with a PostgreSQL backend store, and an unreachable one."""

import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
import uuid
from pathlib import Path

import mlflow
import pytest

from harness.tracking import TrackingUnreachable, check_tracking_uri
from harness.train import run_training

PG = "postgresql://postgres@127.0.0.1:5432"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def postgres_database():
    psycopg2 = pytest.importorskip("psycopg2")
    name = f"rlvr_test_{uuid.uuid4().hex[:10]}"
    admin = psycopg2.connect(f"{PG}/postgres")
    admin.autocommit = True
    admin.cursor().execute(f"CREATE DATABASE {name}")
    yield f"{PG}/{name}"
    admin.cursor().execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
    admin.close()


def start_mlflow_server(backend_uri: str, tmp_path: Path, log) -> tuple[subprocess.Popen, str]:
    """`mlflow server` on a free loopback port in its own process group (stopping the group stops
    its web workers too); returns once /health answers."""
    port = _free_port()
    server = subprocess.Popen(
        [str(Path(sys.executable).with_name("mlflow")), "server", "--backend-store-uri",
         backend_uri.replace("postgresql://", "postgresql+psycopg2://"), "--host", "127.0.0.1",
         "--port", str(port), "--workers", "1", "--artifacts-destination", str(tmp_path / "artifacts")],
        stdout=log, stderr=subprocess.STDOUT, env={**os.environ, "MLFLOW_TRACKING_URI": ""}, start_new_session=True)
    uri = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(uri + "/health", timeout=2):
                return server, uri
        except OSError:
            assert server.poll() is None, (tmp_path / "server.log").read_text()[-2000:]
            time.sleep(0.5)
    os.killpg(server.pid, signal.SIGKILL)
    pytest.fail("mlflow server did not start in 120 s: " + (tmp_path / "server.log").read_text()[-2000:])


@pytest.fixture
def mlflow_server(postgres_database, tmp_path):
    log = open(tmp_path / "server.log", "w")
    server, uri = start_mlflow_server(postgres_database, tmp_path, log)
    yield uri
    os.killpg(server.pid, signal.SIGTERM)
    server.wait(timeout=30)
    log.close()


def test_smoke_run_goes_to_a_real_server_with_postgres(make_run, mlflow_server):
    run = make_run("smoke", algorithm="grpo", seed=0, tracking_uri=mlflow_server, experiment="server-smoke")
    record = run_training(run, progress=False)
    client = mlflow.MlflowClient(mlflow_server)
    logged = client.get_run(record["mlflow_run_id"])
    assert logged.info.status == "FINISHED"
    assert logged.data.tags["algorithm"] == "grpo"
    assert logged.data.metrics["budget/samples"] == record["final_metrics"]["budget/samples"]
    history = client.get_metric_history(logged.info.run_id, "eval/accuracy")
    assert [m.step for m in sorted(history, key=lambda m: m.step)] == [p["step"] for p in record["eval_curve"]]


def test_unreachable_server_is_a_clear_error_naming_the_uri():
    uri = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(TrackingUnreachable, match=uri.replace(".", r"\.")):
        check_tracking_uri(uri, timeout_s=2)


def test_cli_reports_unreachable_server(tmp_path, capsys):
    from harness.cli import main

    uri = f"http://127.0.0.1:{_free_port()}"
    code = main(["train", "--preset", "smoke", "--tracking-uri", uri, "--output-dir", str(tmp_path)])
    assert code == 2
    assert uri in capsys.readouterr().err
