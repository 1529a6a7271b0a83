"""A Lightning MLFlowLogger that a tracking server going away mid-run cannot stop.

Every call that reaches the server is caught: the first failure prints one warning naming the
URI, metrics not yet sent wait in memory (the run's JSON file keeps all of them anyway) and are
sent, in order, once the server answers again; while it is down it is asked at most every
`retry_after_s`. MLflow's own HTTP retries are shortened (unless set in the environment) so a
dead server costs seconds, not minutes, per attempt.
"""

from __future__ import annotations

import os
import sys
import time

from lightning.pytorch.loggers import MLFlowLogger
from lightning.pytorch.utilities import rank_zero_only

HTTP_DEFAULTS = {"MLFLOW_HTTP_REQUEST_MAX_RETRIES": "2", "MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR": "1",
                 "MLFLOW_HTTP_REQUEST_TIMEOUT": "20"}


class ResilientMLFlowLogger(MLFlowLogger):
    def __init__(self, *args, retry_after_s: float = 60.0, **kwargs):
        for name, value in HTTP_DEFAULTS.items():
            os.environ.setdefault(name, value)
        super().__init__(*args, **kwargs)
        self.retry_after_s = retry_after_s
        self.failures = 0
        self.first_error: str | None = None
        self._down_since: float | None = None
        self._pending: list[tuple[dict, int | None]] = []

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

    def _flush(self, force: bool = False) -> None:
        while self._pending:
            metrics, step = self._pending[0]
            if not self._attempt("log_metrics", lambda: MLFlowLogger.log_metrics(self, metrics, step), force):
                return
            self._pending.pop(0)

    @rank_zero_only
    def log_metrics(self, metrics, step=None) -> None:
        self._pending.append((dict(metrics), step))
        self._flush()

    @rank_zero_only
    def log_hyperparams(self, params) -> None:
        self._attempt("log_hyperparams", lambda: MLFlowLogger.log_hyperparams(self, params))

    @rank_zero_only
    def finalize(self, status: str = "success") -> None:
        self._flush(force=True)
        self._attempt("finalize", lambda: MLFlowLogger.finalize(self, status), force=True)

    def status(self) -> dict:
        """For the run's JSON: how the tracking server behaved."""
        return {"failures": self.failures, "first_error": self.first_error,
                "unsent_metric_values": sum(len(m) for m, _ in self._pending)}
