"""A few persistent worker processes, each job under a hard wall-clock limit set by the parent.

Why not concurrent.futures: a future cannot be cancelled once running, and a stuck C-level
computation (sympy on `10**10**10`) never returns, so the only real limit is SIGKILL.
Each worker has its own pipe and runs its jobs one after another, with a few queued so it never
waits for the parent; the parent waits on all pipes, process sentinels and the running jobs'
deadlines at once (multiprocessing.connection.wait).
"""

from __future__ import annotations

import contextlib
import sys

import multiprocessing
import os
import signal
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection, wait
from typing import Any

# A job's outcome: ("ok", value) | ("timeout", None) | ("error", message).
Outcome = tuple[str, Any]

_STARTUP_FAILURES_ALLOWED = 3
WORKER_NAME = "tasks-worker"


def _limit_memory(megabytes: int) -> None:
    """Cap the address space so a runaway bignum raises MemoryError instead of starving the host."""
    try:
        import resource

        limit = megabytes * 1024 * 1024
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    except (ImportError, ValueError, OSError):
        pass  # not POSIX, or a lower hard limit already applies


def _serve(conn: Connection, initializer: Callable[[], None] | None, memory_limit_mb: int) -> None:
    """Worker main loop: run (fn, args) jobs from `conn`, reply ("ok", value) or ("error", text)."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle
    if initializer is not None:
        initializer()
    if memory_limit_mb > 0:
        _limit_memory(memory_limit_mb)
    conn.send(("ready", os.getpid()))
    while True:
        try:
            job = conn.recv()
        except (EOFError, OSError):
            return  # parent is gone
        if job is None:
            return
        fn, args = job
        try:
            reply: Outcome = ("ok", fn(*args))
        except BaseException as error:  # noqa: BLE001 - any failure of a job is that job's "error"
            reply = ("error", _describe(error))
        try:
            conn.send(reply)
        except Exception as error:  # e.g. an unpicklable result
            conn.send(("error", _describe(error)))


def _describe(error: BaseException) -> str:
    try:
        return f"{type(error).__name__}: {error}"[:300]
    except Exception:
        return type(error).__name__


@contextlib.contextmanager
def _main_module_hidden():
    """Start workers without re-importing the parent's __main__.

    "spawn" normally re-runs the parent's main script in each child so that pickled functions
    from it resolve. Workers here only run functions of this package, so hiding __main__'s
    file and spec skips that: a script without an `if __name__ == "__main__":` guard, or code
    fed on standard input, still gets a working verifier.
    """
    main = sys.modules.get("__main__")
    saved = {k: main.__dict__[k] for k in ("__file__", "__spec__") if main is not None and k in main.__dict__}
    try:
        if main is not None:
            main.__dict__.pop("__file__", None)
            main.__spec__ = None
        yield
    finally:
        if main is not None:
            main.__dict__.pop("__spec__", None)
            main.__dict__.update(saved)


class _Worker:
    def __init__(self, context, initializer: Callable[[], None] | None, memory_limit_mb: int) -> None:
        self.conn, child_conn = context.Pipe(duplex=True)
        self.process = context.Process(
            target=_serve, args=(child_conn, initializer, memory_limit_mb), daemon=True, name=WORKER_NAME
        )
        with _main_module_hidden():
            self.process.start()
        child_conn.close()
        self.started = time.monotonic()
        self.ready = False
        # Jobs sent and not yet answered, in the order the worker runs them; the first is running.
        self.inflight: deque[int] = deque()
        self.deadline = 0.0  # for inflight[0]

    def kill(self) -> None:
        self.process.kill()  # SIGKILL: a job stuck in C code ignores anything gentler
        self.process.join(timeout=5)
        self.conn.close()


class WorkerPool:
    """`map(fn, args_list, timeout_s)` over persistent spawned workers. A job gets `timeout_s`
    of wall clock from when its worker starts it; a worker that overruns is killed and replaced
    (that job: "timeout"), and one that dies is replaced (its job is retried once on another
    worker, then reported as "error")."""

    def __init__(
        self,
        workers: int = 2,
        initializer: Callable[[], None] | None = None,
        startup_timeout_s: float = 120.0,
        memory_limit_mb: int = 4096,
        queue_depth: int = 8,
    ) -> None:
        if workers < 1 or queue_depth < 1:
            raise ValueError(f"workers and queue_depth must be >= 1, got {workers}, {queue_depth}")
        self._context = multiprocessing.get_context("spawn")  # fork would copy a threaded parent
        self._initializer = initializer
        self._startup_timeout_s = startup_timeout_s
        self._memory_limit_mb = memory_limit_mb
        # A few jobs queued per worker hide the pipe round trip; few enough to keep load balanced.
        self._queue_depth = queue_depth
        self._lock = threading.Lock()
        self.owner_pid = os.getpid()
        self._workers = [self._spawn() for _ in range(workers)]
        self.replacements = 0
        self.closed = False

    def _spawn(self) -> _Worker:
        return _Worker(self._context, self._initializer, self._memory_limit_mb)

    def _replace(self, index: int) -> None:
        self._workers[index].kill()
        self._workers[index] = self._spawn()
        self.replacements += 1

    def pids(self) -> list[int | None]:
        return [worker.process.pid for worker in self._workers]

    def map(self, fn: Callable[..., Any], args_list: Sequence[tuple], timeout_s: float) -> list[Outcome]:
        """Run fn(*args) for each args; outcomes in input order. Blocks until all are settled.

        `fn` must be importable by name (a module-level function) to reach the workers."""
        with self._lock:
            if self.closed:
                raise RuntimeError("WorkerPool is closed")
            for index, worker in enumerate(self._workers):
                if not worker.process.is_alive():
                    self._replace(index)
            try:
                return self._run(fn, args_list, timeout_s)
            finally:
                # Jobs are still in flight only if the parent was interrupted: drop those workers
                # so their late replies cannot leak into the next call.
                for index, worker in enumerate(self._workers):
                    if worker.inflight:
                        self._replace(index)

    def _run(self, fn: Callable[..., Any], args_list: Sequence[tuple], timeout_s: float) -> list[Outcome]:
        outcomes: list[Outcome | None] = [None] * len(args_list)
        pending = deque(range(len(args_list)))
        unsettled = len(args_list)
        startup_failures = 0
        retried: set[int] = set()

        def settle_head(worker: _Worker, outcome: Outcome, now: float) -> None:
            nonlocal unsettled
            outcomes[worker.inflight.popleft()] = outcome
            unsettled -= 1
            worker.deadline = now + timeout_s  # the next queued job starts now

        def requeue_rest(worker: _Worker) -> None:
            # Queued behind a job that killed the worker, never started: not their fault.
            pending.extendleft(reversed(worker.inflight))
            worker.inflight.clear()

        while unsettled:
            dispatched = True
            while pending and dispatched:  # one job per worker per round keeps the load even
                dispatched = False
                for index, worker in enumerate(self._workers):
                    if not (worker.ready and pending and len(worker.inflight) < self._queue_depth):
                        continue
                    job = pending.popleft()
                    try:
                        worker.conn.send((fn, args_list[job]))
                    except (OSError, ValueError):  # died while idle: run its jobs elsewhere
                        pending.appendleft(job)
                        requeue_rest(worker)
                        self._replace(index)
                        continue
                    if not worker.inflight:
                        worker.deadline = time.monotonic() + timeout_s
                    worker.inflight.append(job)
                    dispatched = True

            now = time.monotonic()
            deadlines = [w.deadline for w in self._workers if w.inflight]
            deadlines += [w.started + self._startup_timeout_s for w in self._workers if not w.ready]
            timeout = max(0.0, min(deadlines) - now) if deadlines else None
            waitables = [w.conn for w in self._workers] + [w.process.sentinel for w in self._workers]
            signalled = set(wait(waitables, timeout=timeout))

            now = time.monotonic()
            for index, worker in enumerate(self._workers):
                dead = worker.process.sentinel in signalled
                try:
                    while (dead or worker.conn in signalled) and worker.conn.poll():
                        kind, value = worker.conn.recv()
                        if kind == "ready":
                            worker.ready = True
                        elif worker.inflight:
                            settle_head(worker, (kind, value), now)
                except (EOFError, OSError):
                    dead = True
                if dead:
                    if worker.inflight and worker.inflight[0] not in retried:
                        # Killed from outside, maybe before it even read the job: one more try.
                        retried.add(worker.inflight[0])
                        requeue_rest(worker)
                    elif worker.inflight:
                        worker.process.join(timeout=1)  # its pipe can close before it is reaped
                        message = f"worker died twice on this job (exit code {worker.process.exitcode})"
                        settle_head(worker, ("error", message), now)
                        requeue_rest(worker)
                    if not worker.ready:
                        startup_failures += 1
                    self._replace(index)
                elif worker.inflight and now >= worker.deadline:
                    settle_head(worker, ("timeout", None), now)
                    requeue_rest(worker)
                    self._replace(index)
                elif not worker.ready and now >= worker.started + self._startup_timeout_s:
                    startup_failures += 1
                    self._replace(index)

            if startup_failures > _STARTUP_FAILURES_ALLOWED and not any(w.ready for w in self._workers):
                # Workers cannot even start (broken install?): fail the rest instead of looping forever.
                for job in pending:
                    outcomes[job] = ("error", "workers failed to start")
                return outcomes  # type: ignore[return-value]
        return outcomes  # type: ignore[return-value]

    def close(self) -> None:
        with self._lock:
            self.closed = True
            for worker in self._workers:
                try:
                    worker.conn.send(None)
                except (OSError, ValueError):
                    pass
            for worker in self._workers:
                worker.process.join(timeout=1)
                if worker.process.is_alive():
                    worker.kill()
                else:
                    worker.conn.close()
            self._workers = []
