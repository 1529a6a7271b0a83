"""The offline stage: N reference samples per training prompt (A*-PO's V*, BASIS's prior).

Run once before training, on the module's device, and cached per (model, task, N, seed, sampling,
prompts, torch build and threads, device, dtype and precision: with other threads or another
dtype the samples can differ, so a run's numbers never depend on whether the file was there).
A*-PO and BASIS share the cache when those match. Its cost, measured when it ran, is charged to every run that uses it: the compute was spent for that run's benefit whether or not
the file was reused. So the seconds charged are those of the sampling run's machine and load; the
tests sample into a cache of their own (tests/conftest.py), never the one a comparison charges.
"""

from __future__ import annotations

import hashlib
import json
import time

from algorithms.rollout import SamplingParams
from harness.paths import cache_path
from harness.records import write_json_atomic


def cache_key(model_path: str, task: str, n: int, seed: int, params: SamplingParams, ids: list[str],
              placement: dict) -> str:
    """`placement`: where the samples are drawn (`harness.placement.placement_key`: device, dtype, precision)."""
    import torch

    from harness.models import model_fingerprint

    fingerprint = json.dumps([model_fingerprint(model_path), task, n, seed, params.temperature, params.top_p, params.max_new_tokens,
                              hashlib.sha1("\n".join(ids).encode()).hexdigest(), torch.__version__,
                              torch.get_num_threads(), placement], sort_keys=True)
    return hashlib.sha1(fingerprint.encode()).hexdigest()[:16]


def offline_stage(module, examples: list, encode_fn, reward_fn, model_path: str, task: str, seed: int,
                  chunk_prompts: int = 64, log=print, n: int | None = None) -> tuple[dict, dict]:
    """(example id -> rewards of N reference samples, cost) for the module's offline stage.

    N is the module's `offline_samples_per_prompt()` unless `n` is given (the value diagnostic
    samples its probe prompts with any module, including ones without an offline stage). The
    module also supplies the engine and the sampling parameters. Charging the cost is the
    caller's decision (:func:`charge`).
    """
    n = module.offline_samples_per_prompt() if n is None else n
    if n < 1:
        raise ValueError(f"the offline stage needs at least one sample per prompt, got n={n}")
    base = module.sampling_params(n)
    ids = [ex.id for ex in examples]
    from harness.placement import placement_key

    path = cache_path("offline") / f"{cache_key(model_path, task, n, seed, base, ids, placement_key(module))}.json"
    if path.exists():
        cached = json.loads(path.read_text())
        log(f"offline: reusing {n} reference samples x {len(ids)} prompts from {path} "
            f"(sampled in {cached['cost']['seconds']:.1f} s, the seconds charged)")
        return cached["rewards"], cached["cost"]
    log(f"offline: sampling {n} reference samples x {len(ids)} prompts")
    started = time.perf_counter()
    rewards: dict[str, list[float]] = {}
    cost = {"samples": 0, "prompt_tokens": 0, "generated_tokens": 0, "seconds": 0.0}
    for start in range(0, len(examples), chunk_prompts):
        chunk = examples[start:start + chunk_prompts]
        params = SamplingParams(n=n, temperature=base.temperature, top_p=base.top_p,
                                max_new_tokens=base.max_new_tokens, seed=seed * 1_000_003 + 500_000 + start)
        rollout = module.engine.generate(encode_fn(chunk), params)
        scores = reward_fn(rollout.texts, [ex for ex in chunk for _ in range(n)])
        for i, ex in enumerate(chunk):
            rewards[ex.id] = scores[i * n:(i + 1) * n]
        cost["samples"] += len(rollout)
        cost["prompt_tokens"] += rollout.prompt_tokens
        cost["generated_tokens"] += rollout.generated_tokens
    cost["seconds"] = time.perf_counter() - started
    write_json_atomic(path, {"rewards": rewards, "cost": cost, "n": n, "task": task, "model": model_path})
    return rewards, cost


def charge(module, cost: dict, parameters: int) -> None:
    """Add the offline cost to the module's budget counters (2 N FLOPs per prefill and decode token)."""
    module.counters["offline_samples"] = cost["samples"]
    module.counters["offline_generated_tokens"] = cost["generated_tokens"]
    module.counters["offline_flops"] = 2.0 * parameters * (cost["prompt_tokens"] + cost["generated_tokens"])
