"""A real (smoke-sized) comparison writes its leaderboard, and the leaderboard's numbers are the runs'."""

from __future__ import annotations

import csv
import json
import shlex
import statistics

import pytest

ALGORITHMS = ["a_star_po", "grpo"]
SEEDS = [0, 1]


@pytest.fixture(scope="session")
def smoke_comparison(tmp_path_factory, tiny_model_dir):
    """GRPO and A*-PO, two seeds each, on the smoke preset cut to 2 steps of 16 samples, in this process."""
    from harness.compare import run_comparison

    out = tmp_path_factory.mktemp("smoke") / "results"
    overrides = {"output_dir": str(out), "model": str(tiny_model_dir), "threads": 1, "max_steps": 2,
                 "samples_per_step": 16, "train_limit": 16, "eval_limit": 8, "eval_every": 1, "experiment": "smoke"}
    run_comparison("smoke", overrides, algorithms=ALGORITHMS, seeds=SEEDS, log=lambda *a: None, isolate=False)
    return out / "smoke"


def test_compare_writes_a_leaderboard_whose_numbers_are_the_runs(smoke_comparison):
    runs = {}
    for path in sorted((smoke_comparison / "runs").glob("*.json")):
        record = json.loads(path.read_text())
        runs.setdefault(record["algorithm"], []).append(record)
    assert sorted(runs) == ALGORITHMS and all(len(r) == len(SEEDS) for r in runs.values())
    with open(smoke_comparison / "leaderboard.csv") as f:
        rows = {row["algorithm"]: row for row in csv.DictReader(f)}
    assert sorted(rows) == ALGORITHMS
    for algorithm, records in runs.items():
        row = rows[algorithm]
        accuracy = [r["summary"]["accuracy_after"] for r in records]
        assert float(row["accuracy_mean"]) == pytest.approx(statistics.mean(accuracy), abs=1e-12)
        # Two seeds: no interval, the range.
        assert row["accuracy_ci_low"] == row["accuracy_ci_high"] == ""
        assert (float(row["accuracy_min"]), float(row["accuracy_max"])) == (min(accuracy), max(accuracy))
        memory = [r["final_metrics"]["perf/peak_memory_gb"] for r in records]
        assert float(row["peak_memory_gb_mean"]) == pytest.approx(statistics.mean(memory), abs=1e-12)
        samples = [r["final_metrics"]["budget/samples"] for r in records]
        assert float(row["samples_mean"]) == pytest.approx(statistics.mean(samples))
    # Wall time: the training call plus the offline stage before it (A*-PO's stage 1).
    offline = {a: [sum(e.get("timing_s/offline", 0.0) for e in r["history"]) for r in recs] for a, recs in runs.items()}
    assert min(offline["a_star_po"]) > 0 and max(offline["grpo"]) == 0
    wall = {a: statistics.mean(r["summary"]["wall_s"] + o for r, o in zip(recs, offline[a])) for a, recs in runs.items()}
    assert float(rows["a_star_po"]["times_faster_wall"]) == pytest.approx(wall["grpo"] / wall["a_star_po"])
    peak = {a: float(rows[a]["peak_memory_gb_mean"]) for a in ALGORITHMS}
    assert float(rows["a_star_po"]["percent_less_memory"]) == pytest.approx(100 * (peak["grpo"] - peak["a_star_po"]) / peak["grpo"])
    # A*-PO's charged offline stage (8 samples per training prompt) is in its sample count.
    assert float(rows["a_star_po"]["samples_mean"]) > float(rows["grpo"]["samples_mean"])

    md = (smoke_comparison / "leaderboard.md").read_text()
    record = runs["grpo"][0]
    assert record["environment"]["git_commit"] and record["environment"]["git_commit"] in md
    assert record["data"]["eval"]["sha256"] in md and record["data"]["train"]["examples"] == 16
    assert shlex.join(record["command"]) in md
    html = (smoke_comparison / "leaderboard.html").read_text()
    assert html.count("<table") == 2 and html.count("data:image/png;base64,") == 3  # no value-MSE logged


def test_the_mlflow_experiment_gives_the_same_leaderboard(smoke_comparison):
    """`--tracking-uri`: the runs read back from the comparison's MLflow store (SQLite) rank and
    measure the same as their JSON files."""
    from harness.report import leaderboard, load_runs

    uri = f"sqlite:///{smoke_comparison.parent / 'mlflow.db'}"
    from_mlflow = load_runs("smoke", tracking_uri=uri)
    from_files = load_runs("smoke", output_dir=smoke_comparison.parent)
    assert [(r["algorithm"], r["seed"]) for r in from_mlflow] == [(r["algorithm"], r["seed"]) for r in from_files]
    for a, b in zip(from_mlflow, from_files):
        assert [p["step"] for p in a["eval_curve"]] == [p["step"] for p in b["eval_curve"]]
        assert a["command"] == b["command"] and a["environment"]["git_commit"] == b["environment"]["git_commit"]
    rows = {name: {r["algorithm"]: r for r in leaderboard(runs, baseline="grpo", target_accuracy=0.3)["rows"]}
            for name, runs in (("mlflow", from_mlflow), ("files", from_files))}
    for algorithm in ALGORITHMS:
        for column in ("rank", "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high", "accuracy_at_matched_samples",
                       "accuracy_at_matched_flops", "seconds_to_target_mean", "peak_memory_gb_mean",
                       "percent_less_memory", "samples_mean", "generated_tokens_mean", "flops_mean", "kl_ref_mean"):
            assert rows["mlflow"][algorithm][column] == pytest.approx(rows["files"][algorithm][column], nan_ok=True), \
                (algorithm, column)
