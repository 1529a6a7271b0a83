"""Shared fixtures: the cached tiny warm start (built once per machine) and run configs."""

from __future__ import annotations

import os

import pytest

TEST_CACHE = "tests-cache"


def pytest_configure(config):
    """Under pytest-xdist (`make test` runs two workers) each worker gets its share of the cores as torch
    threads, and so do the processes it starts (command-line runs, DDP ranks, servers): the tiny
    model's ops are too small for two threads to pay, and two runs side by side on one core each
    finish sooner than one after the other on both (harness/presets/default.yaml, `compare`)."""
    own_offline_cache()
    workers = os.environ.get("PYTEST_XDIST_WORKER_COUNT")
    if workers:
        import torch

        from harness.compare import core_slots

        threads = len(core_slots(int(workers))[0])
        os.environ["OMP_NUM_THREADS"] = os.environ["MKL_NUM_THREADS"] = str(threads)
        torch.set_num_threads(threads)


def own_offline_cache():
    """The tests keep their offline samples (harness/offline.py) in a cache of their own: a run charges
    the seconds its cached samples took when they were sampled, and samples the tests took beside
    their other work (58 s against 22 s seen) would have been charged to the user's next comparison.
    The warm starts and the evaluations before training stay shared (`models`, `evals`)."""
    from harness.paths import cache_dir

    root = cache_dir()
    if root.name == TEST_CACHE:  # an xdist worker: the controller set it
        return
    own = root / TEST_CACHE
    (own / "offline").mkdir(parents=True, exist_ok=True)
    for shared in ("models", "evals"):
        (root / shared).mkdir(parents=True, exist_ok=True)
        if not (own / shared).is_symlink():
            (own / shared).symlink_to(root / shared, target_is_directory=True)
    os.environ["RLVR_CACHE_DIR"] = str(own)


def pytest_collection_modifyitems(config, items):
    """Under pytest-xdist, the `slow` tests first, in their file's order (longest first): `make test`
    hands out one test at a time (`--dist load --maxschedchunk 1`), so the long learning cases go to
    the workers in turn and the short tests fill the gaps; in file order, xdist's first batches
    had put all seven on one worker (19 min 27 s against 17 min 48 s in one process)."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        items.sort(key=lambda item: item.get_closest_marker("slow") is None)  # stable: file order kept


@pytest.fixture(scope="session")
def tiny_model_dir():
    from harness.tiny_model import ensure_tiny

    return ensure_tiny()


@pytest.fixture
def make_run(tmp_path, tiny_model_dir):
    """A RunConfig writing into this test's temporary folder (MLflow SQLite store included)."""
    from harness.config import load_run_config

    def make(preset: str | None = "smoke", **overrides):
        overrides.setdefault("output_dir", str(tmp_path / "results"))
        overrides.setdefault("model", str(tiny_model_dir))
        return load_run_config(preset, overrides)

    return make


@pytest.fixture(scope="session")
def vllm_engine_factory():
    """vLLM engines share one `vllm.LLM` per model folder in this process (it takes ~20 s to start)."""
    from harness.engines import make_engine

    def make(model_dir: str, tokenizer, policy, **options):
        return make_engine("vllm", policy, tokenizer, model_dir=model_dir, options=options)

    return make


@pytest.fixture
def deterministic_history():
    """A run history's numbers that the same seed must repeat (not seconds, memory or speed)."""
    keys = ("train/", "eval/accuracy", "budget/samples", "budget/generated_tokens", "budget/flops")

    def pick(history: list[dict]) -> list[dict]:
        return [{k: v for k, v in row.items() if k.startswith(keys)} for row in history]

    return pick
