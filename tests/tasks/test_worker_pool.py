"""tasks.pool.WorkerPool: the hard limit kills and replaces, a dead worker is replaced, order holds.

Jobs are ordinary library functions (time.sleep, os._exit), so the real kill/replace path runs.
"""

from __future__ import annotations

import os
import time

import pytest

from tasks.pool import WorkerPool


@pytest.fixture(scope="module")
def pool():
    pool = WorkerPool(workers=2, queue_depth=4)
    yield pool
    pool.close()


def test_results_come_back_in_order(pool):
    args = [(str(i) * (i % 7),) for i in range(50)]
    assert pool.map(len, args, timeout_s=10) == [("ok", len(a[0])) for a in args]


def test_overrunning_job_is_killed_and_jobs_queued_behind_it_still_run(pool):
    replacements = pool.replacements
    start = time.perf_counter()
    # queue_depth 4: the zero-second jobs are queued behind the stuck one on the same worker.
    outcomes = pool.map(time.sleep, [(60,)] + [(0,)] * 11, timeout_s=0.5)
    elapsed = time.perf_counter() - start
    assert outcomes == [("timeout", None)] + [("ok", None)] * 11
    assert pool.replacements == replacements + 1
    assert elapsed < 0.5 + 3.0


def test_a_job_that_kills_its_worker_is_an_error_and_the_pool_recovers(pool):
    replacements = pool.replacements
    outcomes = pool.map(os._exit, [(3,)], timeout_s=10)
    assert outcomes[0][0] == "error" and "exit code 3" in outcomes[0][1]
    assert pool.replacements == replacements + 2  # it was retried once, then reported
    assert pool.map(len, [("abc",)] * 5, timeout_s=10) == [("ok", 3)] * 5


def test_a_worker_killed_while_idle_is_replaced(pool):
    pool.map(len, [("a",)] * 4, timeout_s=10)
    victim = pool.pids()[1]
    os.kill(victim, 9)
    time.sleep(0.2)
    assert pool.map(len, [("ab",)] * 8, timeout_s=10) == [("ok", 2)] * 8
    assert victim not in pool.pids()


def test_exceptions_in_jobs_are_errors_and_the_worker_lives_on(pool):
    pids = pool.pids()
    outcomes = pool.map(int, [("12",), ("twelve",)], timeout_s=10)
    assert outcomes[0] == ("ok", 12)
    assert outcomes[1][0] == "error" and "ValueError" in outcomes[1][1]
    assert pool.pids() == pids


def test_closed_pool_refuses_work():
    pool = WorkerPool(workers=1)
    assert pool.map(abs, [(-2,)], timeout_s=30) == [("ok", 2)]
    processes = [worker.process for worker in pool._workers]
    pool.close()
    assert not any(process.is_alive() for process in processes)
    with pytest.raises(RuntimeError):
        pool.map(abs, [(-2,)], timeout_s=30)
