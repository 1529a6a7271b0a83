"""MLflow tracking URIs: fail fast, with the URI in the message, when a server is unreachable;
create a SQLite store's tables one process at a time; experiments marked as model training; a
comparison's parent run; runs left RUNNING by a killed process closed on restart."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request

from harness.errors import TrackingUnreachable


def resolve_tracking_uri(tracking_uri: str | None, output_dir: str) -> str:
    """The given URI, else the default: a SQLite store at <output_dir>/mlflow.db (`harness.paths`)."""
    if tracking_uri:
        return tracking_uri
    from harness.paths import default_tracking_uri

    return default_tracking_uri(output_dir)


def check_tracking_uri(uri: str, timeout_s: float = 5.0) -> None:
    if not uri.startswith(("http://", "https://")):
        return
    url = uri.rstrip("/") + "/health"
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            if response.status >= 500:
                raise TrackingUnreachable(f"--tracking-uri {uri}: the server answered HTTP {response.status}")
    except (urllib.error.URLError, OSError) as err:
        raise TrackingUnreachable(f"--tracking-uri {uri}: MLflow tracking server unreachable ({err})") from None


@contextlib.contextmanager
def store_lock(uri: str):
    """For a SQLite store, an exclusive lock on `<file>.lock`: MLflow creates a new store's tables
    with migrations that fail when a second process runs them at the same time (alembic: "expected
    to match one row"), as two `train` commands with the same output folder do."""
    if not uri.startswith("sqlite:///"):
        yield
        return
    import fcntl

    with open(uri[len("sqlite:///"):] + ".lock", "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


# MLflow 3 opens an experiment on the view of its kind; untagged ones may be taken for GenAI
# (traces, judges). A comparison is model training: its runs table.
EXPERIMENT_KIND = {"mlflow.experimentKind": "custom_model_development"}
COMPARISON_TAG = "rlvr.comparison"  # on a comparison's parent run (runs of one (algorithm, seed) carry `algorithm`)


def ensure_experiment(uri: str, name: str) -> str:
    """The experiment's id in the store at `uri`, created (with the store's tables) if missing and
    marked as model training. A SQLite store keeps its artifacts beside it (`mlartifacts/`), not
    under the current folder."""
    from mlflow.tracking import MlflowClient

    with store_lock(uri):
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(name)
        if found is None:
            location = None
            if uri.startswith("sqlite:///"):
                from pathlib import Path

                location = (Path(uri[len("sqlite:///"):]).resolve().parent / "mlartifacts").as_uri()
            return client.create_experiment(name, artifact_location=location, tags=EXPERIMENT_KIND)
        if found.tags.get("mlflow.experimentKind") is None:
            for key, value in EXPERIMENT_KIND.items():
                client.set_experiment_tag(found.experiment_id, key, value)
        return found.experiment_id


def close_stale_runs(uri: str, experiment: str, algorithm: str, seed: int, keep: str | None = None) -> list[str]:
    """Mark KILLED the runs of (algorithm, seed) in `experiment` still RUNNING but `keep` (a process
    killed before its first checkpoint leaves its run RUNNING forever, beside the run that
    replaces it). Returns their ids."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    stale = client.search_runs([found.experiment_id], max_results=1000,
                               filter_string=f"attributes.status = 'RUNNING' and tags.algorithm = '{algorithm}' "
                                             f"and tags.seed = '{seed}'")
    closed = []
    for run in stale:
        if run.info.run_id != keep and COMPARISON_TAG not in run.data.tags:
            client.set_terminated(run.info.run_id, "KILLED")
            closed.append(run.info.run_id)
    return closed


def comparison_run(uri: str, experiment: str, params: dict) -> str:
    """The comparison's parent run: the one already in `experiment` (a restart continues it) or a
    new one; RUNNING until :func:`finish_comparison_run`."""
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    experiment_id = ensure_experiment(uri, experiment)
    found = client.search_runs([experiment_id], filter_string=f"tags.`{COMPARISON_TAG}` = '{experiment}'",
                               order_by=["attributes.start_time DESC"], max_results=1)
    if found:
        run_id = found[0].info.run_id
        if found[0].info.status != "RUNNING":
            client.update_run(run_id, status="RUNNING")
        return run_id
    run = client.create_run(experiment_id, run_name=f"{experiment} (comparison)", tags={COMPARISON_TAG: experiment})
    client.log_batch(run.info.run_id, params=[_param(k, v) for k, v in sorted(params.items())])
    return run.info.run_id


def _param(key: str, value):
    from mlflow.entities import Param

    return Param(key, str(value)[:6000])


def finish_comparison_run(uri: str, parent: str, child_runs: list[str], leaderboard: dict) -> list[str]:
    """Nest the comparison's runs under `parent` (runs made before it, or resumed, are tagged now),
    attach the leaderboard files (md, html, csv) to it and mark it FINISHED. Returns the ids of
    runs not in this store (a record copied from elsewhere), left alone."""
    from mlflow.exceptions import MlflowException
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=uri)
    elsewhere = []
    for run_id in child_runs:
        try:
            if client.get_run(run_id).data.tags.get("mlflow.parentRunId") != parent:
                client.set_tag(run_id, "mlflow.parentRunId", parent)
        except MlflowException:
            elsewhere.append(run_id)
    for path in leaderboard.values():
        client.log_artifact(parent, str(path), artifact_path="leaderboard")
    client.set_terminated(parent, "FINISHED")
    return elsewhere
