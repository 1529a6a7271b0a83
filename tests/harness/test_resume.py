"""Checkpoint and resume: a run killed with SIGKILL and resumed ends where an uninterrupted run ends."""

import signal
import subprocess
import sys
import time
from pathlib import Path

import mlflow
import pytest
import torch

from harness.checkpoint import load_checkpoint
from harness.paths import checkpoint_path, run_path
from harness.prompt_data import PromptSampler
from harness.train import run_training

DETERMINISTIC = ("train/reward_mean", "train/loss", "train/entropy", "train/kl_ref", "train/value_mse",
                 "train/policy_loss", "train/calibration_a", "train/calibration_b", "eval/accuracy",
                 "budget/samples", "budget/generated_tokens", "budget/flops")


def trajectory(record: dict) -> dict:
    pick = lambda rows: [{k: v for k, v in row.items() if k.startswith(DETERMINISTIC) or k == "step"} for row in rows]
    final = {k: v for k, v in record["final_metrics"].items() if k.startswith(DETERMINISTIC)}
    return {"history": [row for row in pick(record["history"]) if len(row) > 1], "eval_curve": pick(record["eval_curve"]),
            "final": final, "steps": record["summary"]["steps"]}


def assert_same_trajectory(resumed: dict, full: dict) -> None:
    """Equal steps, rows and metrics; values equal up to float32 rounding (a matmul can round its
    last bit differently with other memory alignment: seen once, entropy 0.28411391 vs 0.28411388)."""
    a, b = trajectory(resumed), trajectory(full)
    assert a["steps"] == b["steps"]
    assert [sorted(row) for row in a["history"]] == [sorted(row) for row in b["history"]]
    assert [sorted(row) for row in a["eval_curve"]] == [sorted(row) for row in b["eval_curve"]]
    for x, y in zip(a["history"] + a["eval_curve"] + [a["final"]], b["history"] + b["eval_curve"] + [b["final"]]):
        assert x == pytest.approx(y, rel=1e-5, abs=1e-6)


def test_a_killed_run_resumes_to_the_metrics_of_an_uninterrupted_one(make_run, tiny_model_dir, tmp_path):
    # PPO: policy and critic, two optimizers, in-reward KL against the reference.
    overrides = dict(algorithm="ppo", seed=0, max_steps=3, eval_every=2, threads=1, checkpoint_every=1)
    killed = make_run("smoke", output_dir=str(tmp_path / "killed"), **overrides)
    log = open(tmp_path / "killed.log", "w")
    cli = Path(sys.executable).with_name("rlvr-bench")
    process = subprocess.Popen(
        [str(cli), "train", "--preset", "smoke", "--algorithm", "ppo", "--seed", "0", "--steps", "3", "--eval-every", "2",
         "--threads", "1", "--checkpoint-every", "1", "--model", str(tiny_model_dir), "--output-dir", killed.output_dir],
        stdout=log, stderr=subprocess.STDOUT)
    path = checkpoint_path(killed)
    deadline = time.monotonic() + 300
    try:
        while time.monotonic() < deadline:
            assert process.poll() is None, (tmp_path / "killed.log").read_text()[-3000:]
            if path.exists() and load_checkpoint(path)["training"]["rl_step"] >= 1:
                break
            time.sleep(0.3)
        else:
            pytest.fail("no checkpoint after step 1 within 300 s: " + (tmp_path / "killed.log").read_text()[-3000:])
    finally:
        process.send_signal(signal.SIGKILL)
        process.wait()
    assert process.returncode == -signal.SIGKILL
    at_kill = load_checkpoint(path)["training"]["rl_step"]
    assert 1 <= at_kill < 3
    assert not run_path(killed.output_dir, killed.experiment, "ppo", 0).exists()

    resumed = run_training(killed, progress=False, resume=True)
    full = run_training(make_run("smoke", output_dir=str(tmp_path / "full"), **overrides), progress=False)

    assert resumed["faults"]["resumed_at_steps"] == [at_kill]
    assert_same_trajectory(resumed, full)
    assert [p["step"] for p in resumed["eval_curve"]] == [0, 2, 3]
    assert resumed["final_metrics"]["budget/samples"] == 3 * 32
    # The same MLflow run continued, and it is closed.
    client = mlflow.MlflowClient(killed.tracking())
    assert client.get_run(resumed["mlflow_run_id"]).info.status == "FINISHED"
    assert len(client.search_runs([client.get_experiment_by_name(killed.experiment).experiment_id])) == 1


@pytest.mark.parametrize("algorithm", ["basis", "a_star_po"])
def test_resuming_a_stopped_run_continues_its_offline_state(make_run, tmp_path, algorithm):
    # BASIS's prior and online posteriors (its default baseline), A*-PO's V*: from the checkpoint, not recomputed.
    first = make_run("smoke", algorithm=algorithm, max_steps=1, eval_every=1, threads=1, output_dir=str(tmp_path / "a"),
                     keep_checkpoint=True)
    run_training(first, progress=False)
    state = load_checkpoint(checkpoint_path(first))
    assert state["run"]["finished"] and state["training"]["rl_step"] == 1
    if algorithm == "basis":
        prior, online = state["training"]["prior"], state["training"]["online"]["counts"]
        assert len(prior) == 32 and set(online) == set(prior)  # every training prompt's posterior
        assert any(abs(a / (a + b) - prior[key]) > 1e-9 for key, (a, b) in online.items())  # the step moved some
    else:
        assert len(state["training"]["optimal_value"]) == 32
    run_path(first.output_dir, first.experiment, algorithm, 0).unlink()  # as if killed before its record
    longer = make_run("smoke", algorithm=algorithm, max_steps=2, eval_every=1, threads=1, output_dir=str(tmp_path / "a"))
    resumed = run_training(longer, progress=False, resume=True)
    full = run_training(make_run("smoke", algorithm=algorithm, max_steps=2, eval_every=1, threads=1,
                                 output_dir=str(tmp_path / "b")), progress=False)
    assert_same_trajectory(resumed, full)
    assert resumed["faults"]["resumed_at_steps"] == [1]
    assert [p["step"] for p in resumed["eval_curve"]] == [0, 1, 2]


def test_the_checkpoint_is_deleted_once_the_record_is_written_unless_kept(make_run):
    run = make_run("smoke", algorithm="grpo", max_steps=1, eval_every=0, threads=1)
    run_training(run, progress=False)
    assert run_path(run.output_dir, run.experiment, "grpo", 0).exists()
    assert not checkpoint_path(run).exists()
    assert not checkpoint_path(run).parent.parent.exists()  # no empty checkpoints/<run>/ folders left


def test_a_checkpoint_does_not_resume_a_different_config(make_run, tmp_path):
    run = make_run("smoke", algorithm="grpo", max_steps=1, eval_every=0, threads=1, keep_checkpoint=True)
    run_training(run, progress=False)
    other = make_run("smoke", algorithm="grpo", max_steps=2, eval_every=0, threads=1, algo={"lr": 1.0})
    with pytest.raises(ValueError, match=r"--resume: .*last\.pt is from a different config \(algo\.lr"):
        run_training(other, progress=False, resume=True)


def test_checkpoints_load_with_weights_only_and_are_replaced_atomically(make_run):
    run = make_run("smoke", algorithm="grpo", max_steps=2, eval_every=0, threads=1, checkpoint_every=1,
                   keep_checkpoint=True)
    run_training(run, progress=False)
    path = checkpoint_path(run)
    state = torch.load(path, weights_only=True)
    assert state["training"]["rl_step"] == 2 and state["run"]["finished"]
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]  # no temporary file left behind


def test_prompt_sampler_is_a_function_of_seed_and_step():
    sampler = PromptSampler(10, 4, seed=3)
    steps = [batch for batch, _ in zip(sampler, range(6))]
    assert steps[3:] == [batch for batch, _ in zip(PromptSampler(10, 4, seed=3, start_step=3), range(3))]
    assert sorted(steps[0] + steps[1]) == sorted(set(steps[0] + steps[1]))  # an epoch has no repeats
    shards = [PromptSampler(10, 4, seed=3, rank=r, world_size=2).batch(5) for r in range(2)]
    assert shards[0] + shards[1] == sampler.batch(5)
