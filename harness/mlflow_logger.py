"""A Lightning MLFlowLogger that a tracking server going away mid-run cannot stop.

Every call that reaches the server is caught: the first failure prints one warning naming the
URI, metrics not yet sent wait in memory (the run's JSON file keeps all of them anyway) and are
sent, in order, once the server answers again; while it is down it is asked at most every
`retry_after_s`. MLflow's own HTTP retries are shortened (unless set in the environment) so a
dead server costs seconds, not minutes, per attempt.

`log_hyperparams` also records the run's task data as MLflow dataset inputs (train and eval, named
by task and split, digest the SHA-256 of their examples from the `data.*` params), so MLflow's UI
shows what each run trained and was evaluated on.

Metrics are sent at most every `send_every_s` (5 s), each time all that waits in one `log_batch`:
per step, an SQLite store's ~80 statements took 5 % of a tiny-model GRPO step; per batch, the
store updates each metric's latest value once. `status()` and `finalize()` send what waits.
"""

from __future__ import annotations

import os
import re
import sys
import time

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

BATCH = 1000  # MLflow's limit of metric values per log_batch
HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


class ResilientMLFlowLogger(MLFlowLogger):
    def __init__(self, *args, retry_after_s: float = 60.0, send_every_s: float = 5.0, **kwargs):
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        super().__init__(*args, **kwargs)
        self.retry_after_s = retry_after_s
        self.failures = 0
        self.first_error: str | None = None
        self._down_since: float | None = None
        self.send_every_s = send_every_s
        self._sent_at = -float("inf")  # the first metrics go out at once
        self._pending: list = []  # mlflow.entities.Metric, in the order they were logged

    def _attempt(self, what: str, call, force: bool = False) -> bool:
        if not force and self._down_since is not None and time.monotonic() - self._down_since < self.retry_after_s:
            return False
        try:
            call()
        except Exception as err:  # any failure of the tracking side; training must go on
            self.failures += 1
            self._down_since = time.monotonic()
            if self.first_error is None:
                self.first_error = f"{what}: {type(err).__name__}: {err}"[:500]
                print(f"warning: MLflow tracking server {self._tracking_uri} failed ({self.first_error}); "
                      "training goes on and the run's JSON file keeps every metric", file=sys.stderr)
            return False
        self._down_since = None
        return True

    def _flush(self, now: bool = False, force: bool = False) -> None:
        """Send what waits, in batches of at most `BATCH` values: at once with `now`, else only when
        `send_every_s` have passed since the last send (one store transaction for several steps)."""
        if not (now or force) and time.monotonic() - self._sent_at < self.send_every_s:
            return
        while self._pending:
            batch = self._pending[:BATCH]
            send = lambda: self.experiment.log_batch(self.run_id, metrics=batch, **self._log_batch_kwargs)  # noqa: E731
            if not self._attempt("log_metrics", send, force):
                return
            del self._pending[:len(batch)]
            self._sent_at = time.monotonic()

    @rank_zero_only
    def log_metrics(self, metrics, step=None) -> None:
        from mlflow.entities import Metric

        stamp = int(time.time() * 1000)  # when it was measured, not when it was sent
        for key, value in metrics.items():
            try:
                value = float(value)  # numbers and one-element tensors; anything else is not a metric
            except (TypeError, ValueError):
                continue
            self._pending.append(Metric(key=re.sub(r"[^a-zA-Z0-9_/. -]+", "", key), value=value, timestamp=stamp,
                                        step=step or 0))
        self._flush()

    def flush(self) -> None:
        """Send what waits now (the checkpoint callback calls it: a run killed after a checkpoint
        resumes with every metric up to it in MLflow)."""
        self._flush(now=True)

    @rank_zero_only
    def log_hyperparams(self, params) -> None:
        self._attempt("log_hyperparams", lambda: MLFlowLogger.log_hyperparams(self, params))
        datasets = dataset_inputs(params)
        if datasets:
            self._attempt("log_inputs", lambda: self.experiment.log_inputs(self.run_id, datasets=datasets))

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        self._flush(now=True, force=True)
        self._attempt("finalize", lambda: MLFlowLogger.finalize(self, status), force=True)

    def status(self) -> dict:
        """For the run's JSON: how the tracking server behaved (after sending what waits, if it answers)."""
        self._flush(now=True)
        return {"failures": self.failures, "first_error": self.first_error, "unsent_metric_values": len(self._pending)}


def dataset_inputs(params: dict) -> list:
    """MLflow dataset inputs for the run's train and eval examples, from its params (`task`,
    `task_options`, `data_dir`, `data.train_sha256`, `data.eval_sha256`); [] without them."""
    import json

    from mlflow.entities import Dataset, DatasetInput, InputTag

    from harness.records import portable

    task = params.get("task")
    inputs = []
    for split, context in (("train", "training"), ("eval", "evaluation")):
        digest = params.get(f"data.{split}_sha256")
        if not (task and digest):
            continue
        source = {"task": task, "split": "train" if split == "train" else "test",
                  "task_options": params.get("task_options") or {},
                  "data_dir": portable(str(params["data_dir"])) if params.get("data_dir") else None}
        limit = params.get("train_limit" if split == "train" else "eval_limit")
        dataset = Dataset(name=f"{task}-{split}", digest=str(digest)[:16], source_type="rlvr-bench-task",
                          source=json.dumps(source, sort_keys=True, default=str),
                          profile=json.dumps({"limit": limit, "sha256": digest}, default=str))
        inputs.append(DatasetInput(dataset, tags=[InputTag("mlflow.data.context", context)]))
    return inputs
