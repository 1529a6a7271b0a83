"""The exceptions several modules share, in one module that imports nothing of the harness (so
raising one never pulls in the module that catches it). The CLI turns each into a one-line error."""

from __future__ import annotations


class RunFailed(RuntimeError):
    """A training run ended without its record (a crashed run process, a failed grid)."""


class NonFiniteLossError(RunFailed):
    """Too many steps in a row had a NaN/inf loss; the run stopped after writing a checkpoint."""


class TrackingUnreachable(RuntimeError):
    """The MLflow tracking server does not answer (or answers with a server error)."""
