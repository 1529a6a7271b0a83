"""Tuning without peeking: a sweep's trials score on validation carved from the train split and
never evaluate (nor read) a `test` example; the exported preset reports on test again."""

import json

import mlflow
import optuna
import pytest

import tasks
from harness.config import load_run_config
from rlvr_bench.cli import main
from tasks.validation import carve

TINY = ["--preset", "smoke", "--steps", "1", "--samples-per-step", "16", "--eval-limit", "8", "--threads", "1"]


def test_a_sweeps_trials_never_evaluate_a_test_example(tmp_path, tiny_model_dir, monkeypatch):
    task = tasks.get("arithmetic")
    test_prompts = {ex.prompt for ex in task.load("test", levels=[1])}
    _, validation = carve(task.load("train", levels=[1]))
    loaded: list[str] = []
    verified: list = []
    real_load, real_reward = type(task).load, type(task).reward_many

    def load(self, split, *args, **kwargs):
        loaded.append(split)
        return real_load(self, split, *args, **kwargs)

    def reward_many(self, completions, examples, *args, **kwargs):
        verified.extend(examples)
        return real_reward(self, completions, examples, *args, **kwargs)

    monkeypatch.setattr(type(task), "load", load)
    monkeypatch.setattr(type(task), "reward_many", reward_many)
    out, tuned = tmp_path / "results", tmp_path / "tuned.yaml"
    assert main(["sweep", "--algorithm", "grpo", *TINY, "--model", str(tiny_model_dir), "--output-dir", str(out),
                 "--trials", "1", "--pruner", "none", "--diag-every", "1", "--export", str(tuned)]) == 0

    assert "test" not in loaded and "train" in loaded
    assert verified and not {ex.prompt for ex in verified} & test_prompts  # training, evaluation and probes
    record = json.loads(next((out / "sweeps").rglob("runs/grpo-seed0.json")).read_text())
    assert record["data"]["eval_split"] == "validation" and record["config"]["eval_split"] == "validation"
    evaluated = [ex.prompt for ex in validation[:8]]
    assert record["data"]["eval"]["examples"] == 8
    assert set(evaluated) <= {ex.prompt for ex in verified}  # the trial's objective: these eight
    study = optuna.load_study(study_name="grpo-smoke-sweep", storage=f"sqlite:///{out / 'sweeps' / 'optuna.db'}")
    mlflow.set_tracking_uri(f"sqlite:///{out / 'mlflow.db'}")
    assert mlflow.get_run(study.trials[0].user_attrs["mlflow_run_id"]).data.params["eval_split"] == "validation"
    assert mlflow.get_run(study.user_attrs["mlflow_parent_run_id"]).data.tags["sweep.eval_split"] == "validation"
    assert load_run_config(str(tuned)).eval_split == "test"  # the tuned comparison reports on test


def test_a_sweep_refuses_to_score_on_test(tmp_path, capsys):
    assert main(["sweep", "--algorithm", "grpo", "--trials", "1", "--preset", "smoke", "--eval-split", "test",
                 "--output-dir", str(tmp_path)]) == 2
    assert "--eval-split test" in capsys.readouterr().err
