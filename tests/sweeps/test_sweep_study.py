"""End-to-end sweeps on the tiny model: study vs MLflow child runs, resume, export, Pareto front, pruning."""

import csv

import mlflow
import optuna
import pytest
from optuna.trial import TrialState

from harness.compare import grid
from harness.config import algorithm_config, load_run_config
from rlvr_bench.cli import main

# Plumbing, not learning: two RL steps, eight held-out prompts, one thread.
TINY = ["--preset", "smoke", "--steps", "2", "--samples-per-step", "16", "--eval-every", "1", "--eval-limit", "8",
        "--threads", "1"]


@pytest.fixture
def sweep(tmp_path, tiny_model_dir):
    out = tmp_path / "results"

    def run(*flags: str) -> int:
        return main(["sweep", "--algorithm", "grpo", *TINY, "--model", str(tiny_model_dir),
                     "--output-dir", str(out), *flags])

    run.out = out
    run.storage = f"sqlite:///{out / 'sweeps' / 'optuna.db'}"
    run.tracking = f"sqlite:///{out / 'mlflow.db'}"
    return run


def children(tracking: str, parent: str):
    mlflow.set_tracking_uri(tracking)
    return mlflow.search_runs(experiment_names=["smoke-sweep"],
                              filter_string=f"tags.`mlflow.parentRunId` = '{parent}'")


def test_sweep_study_matches_its_mlflow_child_runs_resumes_and_exports(sweep, tmp_path, capsys):
    assert sweep("--trials", "2", "--pruner", "none") == 0
    assert sweep("--trials", "3", "--pruner", "none") == 2  # the study exists: refuse without --resume
    assert "pass --resume" in capsys.readouterr().err
    tuned = tmp_path / "tuned.yaml"
    assert sweep("--trials", "3", "--pruner", "none", "--resume", "--export", str(tuned)) == 0

    study = optuna.load_study(study_name="grpo-smoke-sweep", storage=sweep.storage)
    assert [t.state for t in study.trials] == [TrialState.COMPLETE] * 3
    baseline = study.trials[0]  # the preset's values, enqueued: the untuned reference
    assert baseline.user_attrs["baseline"] and not any(t.user_attrs.get("baseline") for t in study.trials[1:])
    assert baseline.params == {"lr": 1e-4, "kl_coef": 1e-3, "clip_eps": 0.2, "samples_per_prompt": 8}
    parent = study.user_attrs["mlflow_parent_run_id"]
    runs = children(sweep.tracking, parent)
    assert len(runs) == 3
    assert list(runs.loc[runs["tags.sweep.trial"] == "0", "tags.sweep.baseline"]) == ["true"]
    assert set(runs["tags.sweep.trial"]) == {"0", "1", "2"}
    for t in study.trials:
        row = runs[runs["run_id"] == t.user_attrs["mlflow_run_id"]].iloc[0]
        assert row["tags.sweep.trial"] == str(t.number)
        assert float(row["params.algo.lr"]) == pytest.approx(t.params["lr"])
        assert int(row["params.algo.samples_per_prompt"]) == t.params["samples_per_prompt"]
        assert row["metrics.eval/accuracy"] == pytest.approx(t.value)  # the final evaluation is the objective
    best = runs.loc[runs["metrics.eval/accuracy"].idxmax()]
    assert study.best_value == pytest.approx(best["metrics.eval/accuracy"])
    assert mlflow.get_run(parent).info.status == "FINISHED"
    assert mlflow.get_run(parent).data.metrics["best/eval_accuracy"] == pytest.approx(study.best_value)

    with open(sweep.out / "sweeps" / "grpo-smoke-sweep" / "trials.csv") as f:
        assert [r["state"] for r in csv.DictReader(f)] == ["COMPLETE"] * 3

    # Export round trip: the tuned values reach GRPO only, and `compare` runs the tuned algorithm.
    run = load_run_config(str(tuned), {"algorithm": "grpo"})
    config = algorithm_config(run)
    for name, value in study.best_params.items():
        assert getattr(config, name) == pytest.approx(value)
    assert run.experiment == "smoke-tuned" and run.max_steps == 2 and run.samples_per_step == 16
    assert algorithm_config(load_run_config(str(tuned), {"algorithm": "ppo"})).lr == pytest.approx(3e-4)
    assert grid(str(tuned), None, None) == (["grpo"], [0, 1])


def test_multi_objective_sweep_writes_the_pareto_front(sweep):
    assert sweep("--trials", "3", "--multi-objective", "--steps", "1") == 0
    study = optuna.load_study(study_name="grpo-smoke-sweep", storage=sweep.storage)
    done = study.get_trials(states=(TrialState.COMPLETE,))
    assert len(done) == 3 and len(study.directions) == 2
    folder = sweep.out / "sweeps" / "grpo-smoke-sweep"
    with open(folder / "pareto.csv") as f:
        front = list(csv.DictReader(f))
    assert front and (folder / "pareto.png").stat().st_size > 1000
    points = {t.number: t.values for t in done}
    for row in front:
        accuracy, seconds = points[int(row["trial"])]
        assert float(row["accuracy"]) == pytest.approx(accuracy) and float(row["seconds"]) == pytest.approx(seconds)
        assert seconds > 0
        dominated = any(a >= accuracy and s <= seconds and (a, s) != (accuracy, seconds) for a, s in points.values())
        assert not dominated
    on_front = {int(r["trial"]) for r in front}
    for number, (accuracy, seconds) in points.items():  # every trial off the front is dominated by one on it
        if number not in on_front:
            assert any(points[k][0] >= accuracy and points[k][1] <= seconds for k in on_front)


def test_pruning_stops_an_absurd_learning_rate(tmp_path, tiny_model_dir):
    from sweeps.study import SweepSettings, make_objective, open_study, run_worker
    from sweeps.space import load_space

    space_file = tmp_path / "lr.yaml"
    space_file.write_text("lr: {distribution: categorical, choices: [1.0e-4, 1.0]}\n")
    # No baseline trial: the three enqueued ones are the whole study.
    settings = SweepSettings(algorithm="grpo", trials=2, space=str(space_file), pruner_startup_trials=1, baseline=False)
    run = load_run_config("smoke", {"algorithm": "grpo", "model": str(tiny_model_dir), "threads": 1,
                                    "output_dir": str(tmp_path / "results"), "experiment": "smoke-sweep",
                                    "max_steps": 2, "samples_per_step": 16, "eval_every": 1, "eval_limit": 8})
    space = load_space("grpo", space_file)
    study = open_study(settings, run, f"sqlite:///{tmp_path / 'optuna.db'}", space, "smoke", log=lambda *a: None)
    for lr in (1e-4, 1.0, 1e-4):  # good, absurd, good
        study.enqueue_trial({"lr": lr})
    run_worker(study, make_objective(study, settings, run, space, log=lambda *a: None), settings.trials)

    good, bad, again = study.trials
    assert [t.state for t in study.trials] == [TrialState.COMPLETE, TrialState.PRUNED, TrialState.COMPLETE]
    assert bad.params["lr"] == 1.0
    assert list(bad.intermediate_values) == [1]  # pruned at its first intermediate evaluation
    assert bad.intermediate_values[1] < good.intermediate_values[1]
    assert again.value == pytest.approx(good.value)  # same params, same seed: the same run
    mlflow.set_tracking_uri(run.tracking())
    pruned = mlflow.get_run(bad.user_attrs["mlflow_run_id"])
    assert pruned.info.status == "KILLED" and pruned.data.tags["sweep.state"] == "PRUNED"
    steps = mlflow.MlflowClient().get_metric_history(pruned.info.run_id, "eval/accuracy")
    assert max(m.step for m in steps) == 1  # it stopped training after step 1 of 2
