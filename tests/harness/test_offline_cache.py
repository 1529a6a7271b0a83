"""The offline stage's cache: keyed so that a run's numbers never depend on whether the file was
there, and kept apart from the tests' own work."""

import os
from pathlib import Path

import torch

from algorithms.rollout import SamplingParams
from harness.offline import cache_key
from harness.paths import cache_dir


CPU_FP32 = {"device": "cpu", "dtype": "float32", "precision": "32-true"}


def test_the_key_names_device_dtype_and_precision(tiny_model_dir):
    params = SamplingParams(n=8, temperature=1.0, top_p=1.0, max_new_tokens=40, seed=0)
    keys = {cache_key(str(tiny_model_dir), "arithmetic", 8, 0, params, ["a", "b"], {**CPU_FP32, **change})
            for change in ({}, {"device": "cuda"}, {"dtype": "bfloat16"}, {"precision": "bf16-mixed"})}
    assert len(keys) == 4


def test_the_key_names_the_torch_threads(tiny_model_dir, monkeypatch):
    # The threads as torch reports them (in a test worker, torch.set_num_threads left the count as it was).
    params = SamplingParams(n=8, temperature=1.0, top_p=1.0, max_new_tokens=40, seed=0)
    threads_now = torch.get_num_threads()
    keys = {}
    for threads in (threads_now, threads_now + 1):
        monkeypatch.setattr(torch, "get_num_threads", lambda threads=threads: threads)
        keys[threads] = cache_key(str(tiny_model_dir), "arithmetic", 8, 0, params, ["a", "b"], CPU_FP32)
    monkeypatch.undo()
    assert keys[threads_now] != keys[threads_now + 1]
    assert cache_key(str(tiny_model_dir), "arithmetic", 8, 0, params, ["a", "b"], CPU_FP32) == keys[threads_now]


def test_the_tests_sample_into_a_cache_of_their_own(tiny_model_dir):
    own = cache_dir()
    assert own.name == "tests-cache" and os.environ["RLVR_CACHE_DIR"] == str(own)
    assert (own / "models").resolve() == (own.parent / "models").resolve() != (own / "models")
    assert not (own / "offline").is_symlink() and (own / "offline").resolve() != (own.parent / "offline").resolve()
    # The warm start ships with the package: neither cache holds it.
    assert not Path(tiny_model_dir).resolve().is_relative_to(own.parent.resolve())
