"""Where things live on disk, in one place, and the one way a file (or a folder) is written atomically.

Results, under `--output-dir` (default `results/`)::

    <output_dir>/mlflow.db                                  the default MLflow store
    <output_dir>/<experiment>/runs/<algorithm>-seed<k>.json  a finished run's record
    <output_dir>/<experiment>/checkpoints/<algorithm>-seed<k>/last.pt   its checkpoint until then
    <output_dir>/<experiment>/launch/<algorithm>-seed<k>.yaml           a DDP run's resolved config
    <output_dir>/<experiment>/launch/<algorithm>-seed<k>.progress.json  its last step, for compare's display
    <output_dir>/<experiment>/evals/<label>.json             `rlvr-bench eval` records
    <output_dir>/sweeps/optuna.db, <output_dir>/sweeps/<study>/          Optuna sweeps

The cache (`$RLVR_CACHE_DIR`, else `~/.cache/rlvr-bench`): `models/` (warm starts, converted
models), `offline/` (offline-stage samples), `evals/` (evaluations before training); see
:func:`cache_path`.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

RUNS = "runs"
CHECKPOINTS = "checkpoints"
CHECKPOINT_FILE = "last.pt"
MLFLOW_STORE = "mlflow.db"


def cache_dir() -> Path:
    """`$RLVR_CACHE_DIR`, else `~/.cache/rlvr-bench`."""
    root = os.environ.get("RLVR_CACHE_DIR") or Path.home() / ".cache" / "rlvr-bench"
    path = Path(root)
    path.mkdir(parents=True, exist_ok=True)
    return path


CACHES = ("models", "offline", "evals")


def cache_path(kind: str) -> Path:
    """One of the cache's folders (:data:`CACHES`): `models` (warm starts, converted models),
    `offline` (offline-stage samples), `evals` (evaluations before training)."""
    if kind not in CACHES:
        raise ValueError(f"cache folder {kind!r} is not one of {CACHES}")
    return cache_dir() / kind


def experiment_dir(output_dir: str | Path, experiment: str) -> Path:
    return Path(output_dir) / experiment


def run_name(algorithm: str, seed: int) -> str:
    return f"{algorithm}-seed{seed}"


def run_path(output_dir: str | Path, experiment: str, algorithm: str, seed: int) -> Path:
    """A finished run's record (`harness.records`)."""
    return experiment_dir(output_dir, experiment) / RUNS / f"{run_name(algorithm, seed)}.json"


def checkpoint_dir(output_dir: str | Path, experiment: str, algorithm: str, seed: int) -> Path:
    return experiment_dir(output_dir, experiment) / CHECKPOINTS / run_name(algorithm, seed)


def checkpoint_path(run) -> Path:
    """`run`'s checkpoint (`harness.checkpoint`); `run` a RunConfig."""
    return checkpoint_dir(run.output_dir, run.experiment, run.algorithm, run.seed) / CHECKPOINT_FILE


def launch_path(run) -> Path:
    """The resolved config a DDP run's processes are started with (`harness.compare`)."""
    return experiment_dir(run.output_dir, run.experiment) / "launch" / f"{run_name(run.algorithm, run.seed)}.yaml"


def progress_path(run) -> Path:
    """Where a DDP run's rank 0 reports its steps to `compare` (`harness.progress.ProgressFile`)."""
    path = launch_path(run)
    return path.with_name(path.stem + ".progress.json")


def evals_dir(output_dir: str | Path, experiment: str) -> Path:
    """`rlvr-bench eval`'s records and completions."""
    return experiment_dir(output_dir, experiment) / "evals"


def sweeps_dir(output_dir: str | Path) -> Path:
    """Optuna's store and each study's folder (`sweeps.study`)."""
    return Path(output_dir).resolve() / "sweeps"


def default_tracking_uri(output_dir: str | Path) -> str:
    """The MLflow store a run logs to without `--tracking-uri`: SQLite in the output folder."""
    out = Path(output_dir).resolve()
    out.mkdir(parents=True, exist_ok=True)
    return f"sqlite:///{out / MLFLOW_STORE}"


@contextlib.contextmanager
def atomic_file(path: str | Path, mode: str = "w"):
    """Open a temporary file beside `path` (same folder, so the rename stays on one file system);
    on success flush it to disk and rename it over `path`, else remove it: a reader never sees
    half a file, and a crash leaves the old file in place. `mode` "w" (text) or "wb"."""
    if mode not in ("w", "wb"):
        raise ValueError(f"atomic_file: mode {mode!r} is not 'w' or 'wb'")
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        with open(tmp, mode) as f:
            yield f
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        tmp.unlink(missing_ok=True)


@contextlib.contextmanager
def atomic_folder(path: str | Path):
    """A temporary folder's path beside `path` (not created: `save_pretrained` makes it) to fill;
    on success renamed to `path`, else removed: a reader never sees half a folder (a killed build
    leaves no `path`). When `path` appeared meanwhile (another process finished first), this copy
    is dropped and theirs kept."""
    import shutil

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    shutil.rmtree(tmp, ignore_errors=True)
    try:
        yield tmp
        try:
            os.rename(tmp, path)
        except OSError:
            if not path.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def write_text_atomic(path: str | Path, text: str) -> None:
    """`text` into `path` through :func:`atomic_file`."""
    with atomic_file(path) as f:
        f.write(text)
