"""The one verifier, for training rewards and for evaluation: `tasks.verify(gold, completion)`.

Model text is only ever handled inside a pool of spawned worker processes (tasks.pool), so a
pathological completion costs at most `timeout_s` and a killed worker, never the caller.
The parent process does not even import sympy.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import threading
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass

from tasks.extract import MAX_COMPLETION_CHARS, truncate
from tasks.pool import WORKER_NAME, WorkerPool

STATUSES = ("ok", "no_answer", "gold_unparsed", "timeout", "error")
DEFAULT_WORKERS = 2


@dataclass(frozen=True)
class Verdict:
    """score: 1.0 if the completion's final answer equals the gold answer, else 0.0.
    status: "ok" (compared), "no_answer", "gold_unparsed", "timeout" or "error"."""

    score: float
    status: str


_pool: WorkerPool | None = None
_pool_lock = threading.Lock()
_atexit_registered = False
_counts: Counter[str] = Counter()
_counts_lock = threading.Lock()


def _check_in_worker(gold: str, completion: str, timeout_s: float) -> tuple[float, str]:
    from tasks.check import check  # imported in the worker only (sympy, antlr)

    return check(gold, completion, timeout_s)


def _warm_up_worker() -> None:
    from tasks.check import warm_up

    warm_up()


def worker_count() -> int:
    """$RLVR_VERIFY_WORKERS, else 2: verification is a small share of a training step."""
    try:
        return max(1, int(os.environ.get("RLVR_VERIFY_WORKERS", DEFAULT_WORKERS)))
    except ValueError:
        return DEFAULT_WORKERS


def _refuse_inside_worker() -> None:
    if multiprocessing.current_process().name == WORKER_NAME:
        # "spawn" re-imports the parent's __main__ in each worker; an unguarded script lands here.
        raise RuntimeError(
            "tasks.verify was called while a verifier worker was importing the main script; "
            "put the script's entry point under `if __name__ == '__main__':`"
        )


def get_pool() -> WorkerPool:
    """The process-wide pool, started on first use (and again in a forked child, which must not
    share its parent's pipes)."""
    global _pool, _atexit_registered
    _refuse_inside_worker()
    with _pool_lock:
        if _pool is None or _pool.closed or _pool.owner_pid != os.getpid():
            _pool = WorkerPool(workers=worker_count(), initializer=_warm_up_worker)
            if not _atexit_registered:
                atexit.register(shutdown)
                _atexit_registered = True
        return _pool


def shutdown() -> None:
    """Stop the workers (registered atexit; the next verify call starts a new pool)."""
    global _pool
    with _pool_lock:
        if _pool is not None and _pool.owner_pid == os.getpid():
            _pool.close()
        _pool = None


def _as_text(value: object) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8", errors="replace")
    try:
        return str(value)
    except Exception:
        return ""


def verify_many(pairs: Iterable[tuple[str, str]], timeout_s: float = 5.0) -> list[Verdict]:
    """Verdicts for (gold, completion) pairs, in order, verified in parallel by the pool.

    Each pair gets at most `timeout_s` seconds of wall clock once a worker picks it up.
    """
    if not timeout_s > 0:
        raise ValueError(f"timeout_s must be > 0, got {timeout_s}")
    # Truncate here too: a 10 MB completion should not even cross the pipe.
    jobs = [
        (
            truncate(_as_text(gold), MAX_COMPLETION_CHARS),
            truncate(_as_text(completion), MAX_COMPLETION_CHARS),
            timeout_s,
        )
        for gold, completion in pairs
    ]
    if not jobs:
        return []
    _refuse_inside_worker()
    try:
        outcomes = get_pool().map(_check_in_worker, jobs, timeout_s)
    except Exception:  # e.g. a daemonic process, which may not start workers
        outcomes = [("error", None)] * len(jobs)
    verdicts = [Verdict(*value) if kind == "ok" else Verdict(0.0, kind) for kind, value in outcomes]
    with _counts_lock:
        _counts.update(verdict.status for verdict in verdicts)
    return verdicts


def verify(gold: str, completion: str, timeout_s: float = 5.0) -> Verdict:
    """Verdict for one completion against the gold answer; never raises on any string."""
    return verify_many([(gold, completion)], timeout_s)[0]


def status_counts() -> Counter[str]:
    """Copy of the process-wide count of verdict statuses (log as `eval/status/<status>`)."""
    with _counts_lock:
        return Counter(_counts)


def reset_status_counts() -> None:
    with _counts_lock:
        _counts.clear()
