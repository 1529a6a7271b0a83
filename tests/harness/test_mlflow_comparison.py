"""What MLflow holds after a comparison: an experiment marked as model training, a parent run with
the leaderboard files, its runs nested under it with their task data as dataset inputs, and a run a
killed process left RUNNING marked KILLED on restart."""

from __future__ import annotations

import pytest

from harness.tracking import COMPARISON_TAG, ensure_experiment


@pytest.fixture(scope="module")
def comparison(tmp_path_factory, tiny_model_dir):
    """One GRPO run of a 2-step smoke comparison, after a crash left a RUNNING run of the same
    (algorithm, seed) behind. Returns (tracking URI, stale run id, output folder)."""
    from mlflow.tracking import MlflowClient

    from harness.compare import run_comparison

    out = tmp_path_factory.mktemp("mlflow") / "results"
    uri = f"sqlite:///{out.resolve() / 'mlflow.db'}"
    client = MlflowClient(tracking_uri=uri)
    stale = client.create_run(ensure_experiment(uri, "smoke"), run_name="grpo-seed0",
                              tags={"algorithm": "grpo", "seed": "0"}).info.run_id  # killed before a checkpoint
    overrides = {"output_dir": str(out), "model": str(tiny_model_dir), "threads": 1, "max_steps": 2,
                 "samples_per_step": 16, "train_limit": 16, "eval_limit": 8, "experiment": "smoke"}
    lines = []
    run_comparison("smoke", overrides, algorithms=["grpo"], seeds=[0], log=lines.append, isolate=False)
    assert any(stale in line and "KILLED" in line for line in lines)
    return uri, stale, out


def test_stale_running_run_is_marked_killed_beside_its_finished_twin(comparison):
    from mlflow.tracking import MlflowClient

    uri, stale, _ = comparison
    client = MlflowClient(tracking_uri=uri)
    runs = client.search_runs([client.get_experiment_by_name("smoke").experiment_id], "tags.algorithm = 'grpo'")
    assert sorted(r.info.status for r in runs) == ["FINISHED", "KILLED"]
    assert client.get_run(stale).info.status == "KILLED"


def test_experiment_is_model_training_with_a_parent_run_holding_the_leaderboard(comparison):
    from mlflow.tracking import MlflowClient

    uri, stale, out = comparison
    client = MlflowClient(tracking_uri=uri)
    experiment = client.get_experiment_by_name("smoke")
    assert experiment.tags["mlflow.experimentKind"] == "custom_model_development"
    assert experiment.artifact_location == (out.resolve() / "mlartifacts").as_uri()
    parents = client.search_runs([experiment.experiment_id], f"tags.`{COMPARISON_TAG}` = 'smoke'")
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    parent = parents[0].info.run_id
    files = sorted(a.path for a in client.list_artifacts(parent, "leaderboard"))
    assert files == ["leaderboard/leaderboard.csv", "leaderboard/leaderboard.html", "leaderboard/leaderboard.md"]
    local = client.download_artifacts(parent, "leaderboard/leaderboard.md", str(out / "download"))
    assert open(local).read() == (out / "smoke" / "leaderboard.md").read_text()
    finished = client.search_runs([experiment.experiment_id], "attributes.status = 'FINISHED' and tags.algorithm = 'grpo'")
    assert [r.data.tags.get("mlflow.parentRunId") for r in finished] == [parent]
    assert client.get_run(stale).data.tags.get("mlflow.parentRunId") is None


def test_each_run_records_its_task_data_as_dataset_inputs(comparison):
    import json

    from mlflow.tracking import MlflowClient

    uri, _, out = comparison
    client = MlflowClient(tracking_uri=uri)
    record = json.loads((out / "smoke" / "runs" / "grpo-seed0.json").read_text())
    inputs = client.get_run(record["mlflow_run_id"]).inputs.dataset_inputs
    by_name = {i.dataset.name: i for i in inputs}
    assert sorted(by_name) == ["arithmetic-eval", "arithmetic-train"]
    assert by_name["arithmetic-train"].dataset.digest == record["data"]["train"]["sha256"][:16]
    assert by_name["arithmetic-eval"].dataset.digest == record["data"]["eval"]["sha256"][:16]
    assert {t.key: t.value for t in by_name["arithmetic-train"].tags} == {"mlflow.data.context": "training"}
    assert json.loads(by_name["arithmetic-eval"].dataset.source) == {
        "task": "arithmetic", "split": "test", "task_options": {"levels": [1]}, "data_dir": None}


def test_mlflow_ui_in_headless_chromium_shows_training_runs_parent_and_datasets(comparison, tmp_path):
    """A real `mlflow server` on the comparison's store, opened in headless Chromium: the
    experiment's Model training view lists the comparison's parent run, and a run's page names its
    parent and its training dataset."""
    import json
    import shutil
    import socket
    import subprocess
    import sys
    import time
    import urllib.request
    from pathlib import Path

    from mlflow.tracking import MlflowClient

    from harness.compare import mlflow_ui_url

    browser = shutil.which("chromium") or shutil.which("chromium-browser") or shutil.which("google-chrome")
    assert browser, "headless Chromium is needed (scripts/setup.sh installs it: apt-get install -y chromium)"
    uri, _, out = comparison
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    mlflow = str(Path(sys.executable).parent / "mlflow")
    server = subprocess.Popen([mlflow, "server", "--backend-store-uri", uri, "--host", "127.0.0.1", "--port", str(port),
                               "--workers", "1"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    try:
        base = f"http://127.0.0.1:{port}"
        for _ in range(120):
            try:
                urllib.request.urlopen(base + "/health", timeout=2)
                break
            except OSError:
                time.sleep(1)
        experiment = MlflowClient(tracking_uri=uri).get_experiment_by_name("smoke").experiment_id

        def dom(url: str, name: str) -> str:
            command = [browser, "--headless", "--no-sandbox", "--disable-gpu", f"--user-data-dir={tmp_path / name}",
                       "--virtual-time-budget=30000", "--window-size=1400,1200", "--dump-dom", url]
            return subprocess.run(command, capture_output=True, text=True, timeout=120).stdout

        page = dom(mlflow_ui_url(base, experiment), "experiment")
        assert "Model training" in page and "smoke (comparison)" in page
        child = json.loads((out / "smoke" / "runs" / "grpo-seed0.json").read_text())["mlflow_run_id"]
        page = dom(mlflow_ui_url(base, experiment, child), "run")
        assert "grpo-seed0" in page and "Parent run" in page and "smoke (comparison)" in page
        assert "arithmetic-train" in page
    finally:
        import os
        import signal

        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)
