"""A real `mlflow server` (PostgreSQL backend) stopped in the middle of a run: the run completes and
its JSON file has every metric."""

import os
import signal
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import lightning as L
import mlflow
import pytest
from test_tracking_server import _free_port, postgres_database, start_mlflow_server  # noqa: F401 (a fixture)

from harness.train import run_training


@pytest.fixture
def stoppable_mlflow_server(postgres_database, tmp_path):  # noqa: F811
    log = open(tmp_path / "server.log", "w")
    server, uri = start_mlflow_server(postgres_database, tmp_path, log)

    def stop():
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGTERM)
            server.wait(timeout=30)

    yield uri, stop
    stop()
    log.close()


class StopServerAfterStep(L.Callback):
    def __init__(self, stop, step):
        self.stop, self.step = stop, step

    def on_train_batch_end(self, trainer, module, outputs, batch, batch_idx):
        if module.rl_step == self.step:
            self.stop()


def test_a_server_that_goes_away_mid_run_does_not_stop_training(make_run, stoppable_mlflow_server, capfd):
    uri, stop = stoppable_mlflow_server
    # One server start for both checks (it takes a while): first the logger alone, then a real run.
    check_metrics_held_back_during_an_outage_are_sent_when_the_server_answers_again(uri)
    capfd.readouterr()
    run = make_run("smoke", algorithm="grpo", seed=0, tracking_uri=uri, experiment="outage", threads=1)
    record = run_training(run, progress=False, extra_callbacks=[StopServerAfterStep(stop, 1)])

    assert record["summary"]["steps"] == 3
    train_steps = [row["step"] for row in record["history"] if "train/reward_mean" in row]
    assert train_steps == [1, 2, 3]
    assert [p["step"] for p in record["eval_curve"]] == [0, 2, 3]
    for name in ("eval/accuracy", "budget/samples", "budget/flops", "train/loss", "time/wall_s"):
        assert name in record["final_metrics"], name
    assert record["final_metrics"]["budget/samples"] == 3 * 32
    tracking = record["faults"]["tracking"]
    assert tracking["failures"] >= 1 and tracking["unsent_metric_values"] > 0
    assert uri.split("//")[1] in tracking["first_error"] or "Connection" in tracking["first_error"]
    err = capfd.readouterr().err
    assert err.count(f"warning: MLflow tracking server {uri} failed") == 1
    # What reached the server before it went away is there; the rest only in the JSON file.
    assert record["mlflow_run_id"]


def check_metrics_held_back_during_an_outage_are_sent_when_the_server_answers_again(uri):
    from harness.mlflow_logger import ResilientMLFlowLogger

    logger = ResilientMLFlowLogger(experiment_name="flush", tracking_uri=uri, retry_after_s=0.0)
    logger.log_metrics({"a": 1.0}, step=0)
    run_id = logger.run_id
    # Point the logger at a dead port: as if the server went away, then came back.
    live_client = logger._mlflow_client
    logger._mlflow_client = mlflow.MlflowClient(f"http://127.0.0.1:{_free_port()}")
    logger.log_metrics({"a": 2.0}, step=1)
    logger.log_metrics({"a": 3.0}, step=2)
    assert logger.status()["unsent_metric_values"] == 2 and logger.failures >= 1
    logger._mlflow_client = live_client
    logger.log_metrics({"a": 4.0}, step=3)
    logger.finalize("success")
    history = mlflow.MlflowClient(uri).get_metric_history(run_id, "a")
    assert sorted((m.step, m.value) for m in history) == [(0, 1.0), (1, 2.0), (2, 3.0), (3, 4.0)]
    assert logger.status()["unsent_metric_values"] == 0
