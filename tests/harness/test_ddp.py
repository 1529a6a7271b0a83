"""DDP with 2 CPU processes (gloo): the first step's loss and gradients equal one process's on the same global batch."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from ddp_first_step import PROMPTS, single


@pytest.mark.parametrize("algorithm", ["grpo", "basis"])
def test_ddp_first_step_matches_one_process_on_the_same_global_batch(algorithm, tiny_model_dir, tmp_path):
    script = Path(__file__).with_name("ddp_first_step.py")
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    done = subprocess.run([sys.executable, str(script), algorithm, str(tiny_model_dir), str(tmp_path), "ddp"],
                          env=env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    ranks = [torch.load(tmp_path / f"rank{r}.pt", weights_only=True) for r in (0, 1)]
    reference = single(algorithm, str(tiny_model_dir))

    assert [r["world_size"] for r in ranks] == [2, 2]
    g = 8 if algorithm == "grpo" else 1
    assert ranks[0]["global_counters"]["samples"] == PROMPTS * g  # budgets count both processes
    # Advantages: the global batch's (BASIS's values and std over all 4 prompts, GRPO's groups whole).
    advantages = torch.cat([r["advantages"][:, 0] for r in ranks])
    torch.testing.assert_close(advantages, reference["advantages"][:, 0], rtol=1e-5, atol=1e-6)
    assert advantages.abs().sum() > 0  # a batch with something to learn from
    # Each process's loss is its additive part of the global loss.
    assert ranks[0]["loss"] + ranks[1]["loss"] == pytest.approx(reference["loss"], rel=1e-5, abs=1e-7)
    # DDP averaged the gradients: both processes hold the single-process gradient.
    assert set(ranks[0]["grads"]) == set(reference["grads"])
    for name, grad in reference["grads"].items():
        torch.testing.assert_close(ranks[0]["grads"][name], ranks[1]["grads"][name], rtol=0, atol=0)
        torch.testing.assert_close(ranks[0]["grads"][name], grad, rtol=1e-4, atol=1e-7)
    assert sum(float(grad.abs().sum()) for grad in reference["grads"].values()) > 0
