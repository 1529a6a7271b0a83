"""Non-finite losses: one skips its update and is counted; a run of them stops the run after a checkpoint."""

import pytest
import torch

from algorithms.grpo import GRPO
from harness.checkpoint import load_checkpoint
from harness.errors import NonFiniteLossError
from harness.paths import checkpoint_path
from harness.train import run_training


def nan_loss_at(monkeypatch, bad_steps, seen):
    """GRPO's loss, NaN at the given RL steps (0-based); records a weight checksum per call."""
    real_loss = GRPO.loss

    def loss(self, batch, logp, logits, denominators):
        value, stats = real_loss(self, batch, logp, logits, denominators)
        seen.setdefault(self.rl_step, float(sum(p.detach().double().sum() for p in self.policy.parameters())))
        if bad_steps(self.rl_step):
            value = value * float("nan")
        return value, stats

    monkeypatch.setattr(GRPO, "loss", loss)


def test_a_nan_loss_skips_its_update_and_is_counted(make_run, monkeypatch):
    seen = {}
    nan_loss_at(monkeypatch, lambda step: step == 1, seen)
    run = make_run("smoke", algorithm="grpo", seed=0, max_steps=3, eval_every=0, threads=1)
    record = run_training(run, progress=False)
    assert record["summary"]["steps"] == 3
    assert record["summary"]["nonfinite_skipped"] == 1
    assert record["faults"]["nonfinite_skipped"] == 1
    train_rows = [row for row in record["history"] if "train/nonfinite_skipped" in row]
    assert [row["train/nonfinite_skipped"] for row in train_rows] == [0.0, 1.0, 1.0]
    # Step 1's update was skipped: step 2 starts from the weights step 1 saw; step 0's update did apply.
    assert seen[2] == seen[1] != seen[0]
    assert all(torch.isfinite(torch.tensor(row["train/loss"])) for row in train_rows if row.get("train/loss") is not None)


def test_nan_losses_in_a_row_stop_the_run_with_a_checkpoint(make_run, monkeypatch):
    seen = {}
    nan_loss_at(monkeypatch, lambda step: step >= 1, seen)
    run = make_run("smoke", algorithm="grpo", seed=0, max_steps=10, eval_every=0, threads=1,
                   max_nonfinite_steps=2, checkpoint_every=0)
    with pytest.raises(NonFiniteLossError, match=r"stopped at step 3: the loss was NaN/inf in 2 steps in a row") as err:
        run_training(run, progress=False)
    path = checkpoint_path(run)
    assert str(path) in str(err.value)
    state = load_checkpoint(path)
    assert state["training"]["rl_step"] == 3
    assert state["training"]["nonfinite_skipped"] == 2
    assert not state["run"]["finished"]
    assert len(state["run"]["recorder"]["eval_curve"]) == 1  # step 0 only: no final evaluation of a broken run
