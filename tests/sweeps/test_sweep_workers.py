"""Two sweep workers on one study in the real PostgreSQL; one is SIGKILLed mid-trial."""

import os
import re
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

PG = "postgresql+psycopg2://postgres@127.0.0.1:5432/test"


@pytest.fixture
def pg_study():
    pytest.importorskip("psycopg2")
    name = f"rlvr-test-{uuid.uuid4().hex[:10]}"
    optuna.storages.RDBStorage(PG)  # create the tables once, before two workers race to
    yield name
    try:
        optuna.delete_study(study_name=name, storage=PG)
    except KeyError:
        pass


def _trial_of(log: Path) -> int | None:
    found = re.findall(r"sweep: trial (\d+) \{", log.read_text()) if log.exists() else []
    return int(found[0]) if found else None


def test_killed_worker_trial_is_failed_and_retried_nothing_lost(pg_study, tmp_path, tiny_model_dir):
    cli = Path(sys.executable).with_name("rlvr-bench")
    flags = ["sweep", "--algorithm", "grpo", "--trials", "2", "--study", pg_study, "--storage", PG, "--resume",
             "--heartbeat", "1", "--grace", "3", "--pruner", "none", "--preset", "smoke", "--steps", "6",
             "--samples-per-step", "16", "--eval-every", "1", "--eval-limit", "8", "--threads", "1",
             "--model", str(tiny_model_dir), "--output-dir", str(tmp_path / "results")]
    env = {**os.environ, "PYTHONUNBUFFERED": "1"}
    logs = [tmp_path / "worker-a.log", tmp_path / "worker-b.log"]
    workers = [subprocess.Popen([str(cli), *flags], stdout=open(log, "w"), stderr=subprocess.STDOUT, env=env)
               for log in logs]
    try:
        deadline = time.monotonic() + 300  # generous: CI shares its cores
        while _trial_of(logs[0]) is None:  # worker A has started a trial
            assert workers[0].poll() is None, logs[0].read_text()[-3000:]
            assert time.monotonic() < deadline, logs[0].read_text()[-3000:]
            time.sleep(0.1)
        killed = _trial_of(logs[0])
        # Into its training, well before its end: on a fast CPU a 3-step trial took 1.3 s, and a kill
        # 1-1.5 s after its start found it finished (6 steps, killed within ~0.4 s of the start).
        time.sleep(0.3)
        assert workers[0].poll() is None, "worker A finished before it could be killed"
        workers[0].send_signal(signal.SIGKILL)
        workers[0].wait()
        assert workers[1].wait(timeout=400) == 0, logs[1].read_text()[-3000:]
    finally:
        for w in workers:
            if w.poll() is None:
                w.kill()

    study = optuna.load_study(study_name=pg_study, storage=PG)
    trials = {t.number: t for t in study.get_trials()}
    states = [t.state for t in trials.values()]
    assert states.count(TrialState.COMPLETE) == 2
    assert trials[killed].state == TrialState.FAIL
    assert not {TrialState.RUNNING, TrialState.WAITING} & set(states)  # nothing left hanging
    retries = [t for t in trials.values() if t.system_attrs.get("failed_trial") == killed]
    assert len(retries) == 1 and retries[0].state == TrialState.COMPLETE
    assert retries[0].params == trials[killed].params  # the retry runs the killed trial's hyperparameters
    assert "joined study" in logs[0].read_text() + logs[1].read_text()  # one worker created it, one joined

    mlflow.set_tracking_uri(f"sqlite:///{tmp_path / 'results' / 'mlflow.db'}")
    parent = study.user_attrs["mlflow_parent_run_id"]
    runs = mlflow.search_runs(experiment_names=["smoke-sweep"], filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")
    finished = runs[runs["status"] == "FINISHED"]
    complete = {t.user_attrs["mlflow_run_id"]: t for t in trials.values() if t.state == TrialState.COMPLETE}
    assert set(finished["run_id"]) == set(complete)
    for _, row in finished.iterrows():
        assert row["metrics.eval/accuracy"] == pytest.approx(complete[row["run_id"]].value)
    assert mlflow.get_run(parent).info.status == "FINISHED"
