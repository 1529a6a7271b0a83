"""MLflow tracking URIs: fail fast, with the URI in the message, when a server is unreachable;
create a SQLite store's tables one process at a time."""

from __future__ import annotations

import contextlib
import urllib.error
import urllib.request


def resolve_tracking_uri(tracking_uri: str | None, output_dir: str) -> str:
    """The given URI, else the default: a SQLite store at <output_dir>/mlflow.db."""
    if tracking_uri:
        return tracking_uri
    from pathlib import Path

    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{out / 'mlflow.db'}"


class TrackingUnreachable(RuntimeError):
    pass


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


def ensure_experiment(uri: str, name: str) -> str:
    """The experiment's id in the store at `uri`, created (with the store's tables) if missing."""
    from mlflow.tracking import MlflowClient

    with store_lock(uri):
        client = MlflowClient(tracking_uri=uri)
        found = client.get_experiment_by_name(name)
        return found.experiment_id if found else client.create_experiment(name)
