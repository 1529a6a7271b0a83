"""Each algorithm, from the warm start with its preset, raises held-out accuracy (NeMo-RL-style bounds)."""

import pytest

import algorithms
from harness.train import run_training


# Every algorithm with the HF engine; with vLLM, the two rollout shapes the engine serves: several
# samples per prompt (REBEL's pairs) and one per prompt after an offline stage sampled by the same
# engine (BASIS). The engine code is the same for every algorithm, and
# tests/harness/test_vllm_engine.py checks it against HF token for token; three more 40-step runs
# would add ~7 CI minutes.
CASES = [(name, "hf") for name in algorithms.names()] + [("rebel", "vllm"), ("basis", "vllm")]
# Longest first, so that `make test`'s two workers share them evenly (minutes on one thread, 2026-11-24).
MINUTES = {("ppo", "hf"): 4.8, ("a_star_po", "hf"): 2.8, ("basis", "vllm"): 2.5, ("basis", "hf"): 2.3,
           ("rebel", "vllm"): 2.1, ("rebel", "hf"): 2.0, ("grpo", "hf"): 1.1}
CASES.sort(key=lambda case: -MINUTES.get(case, 0.0))
# 2.5 standard errors of the paired difference (about 0.02: 500 problems x 2 samples, drawn with the
# same random numbers before and after). Seed-0 gains on the warm start this machine kind builds
# (accuracy 0.253; results/reference/default at commit bf0e892): A*-PO +0.153, BASIS +0.135, GRPO +0.068,
# PPO +0.162, REBEL +0.097. (A warm start built on another machine, accuracy 0.294, gave A*-PO and
# GRPO only +0.036 and +0.035 before shared-prompt passes; the margin was 0.03 for that session.)
# The warm start is rebuilt on each machine and float rounding differs between CPUs: one built
# later had level-1 accuracy 0.446, on which GRPO at lr 3e-4 lost accuracy (0.446 -> 0.392); its
# preset lr is 1e-4 since, and every case here passed on that warm start (all seven, 13 min).
# The warm start is now built with pinned kernels (harness/tiny_model.py), which on the AVX2
# machine kind gives bitwise the 0.253 one; there GRPO at 1e-4 gains +0.060 / +0.073 (seeds 0 / 1,
# one thread each, 40 steps) and its case here passed. With the preset's memory settings (2048-token
# micro-batches, 32-prompt prefills; commit ede1d29) all seven passed again on that machine kind (17 min).
# `make test` runs them on two pytest-xdist workers, one torch thread each (tests/conftest.py); on
# that machine kind, 2026-11-24 (9 min 24 s for the seven): A*-PO 0.253 -> 0.398, BASIS -> 0.392,
# GRPO -> 0.313, PPO -> 0.442, REBEL -> 0.350; with vLLM (before 0.248) BASIS -> 0.468, REBEL -> 0.386.
MARGIN = 0.05


@pytest.mark.slow
@pytest.mark.parametrize(("name", "engine"), CASES)
def test_algorithm_raises_heldout_accuracy(name, engine, make_run):
    # In one pytest process every vLLM run shares one engine (weights reset per run).
    # The default comparison's settings, pinned here so a faster default cannot weaken this test.
    run = make_run("default", algorithm=name, seed=0, eval_every=0, engine=engine, max_steps=40,
                   samples_per_step=256, train_limit=1280, eval_limit=500, eval_samples=2)
    record = run_training(run, progress=False)
    s = record["summary"]
    print(f"{name} ({engine}): held-out accuracy {s['accuracy_before']:.3f} -> {s['accuracy_after']:.3f}")  # pytest -rP
    assert s["accuracy_after"] >= s["accuracy_before"] + MARGIN, s
    assert s["steps"] == run.max_steps
    assert record["engine"] == engine
    final = record["final_metrics"]
    assert final["budget/samples"] >= run.max_steps * run.samples_per_step
