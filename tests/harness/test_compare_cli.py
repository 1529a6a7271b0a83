"""`rlvr-bench compare --preset smoke` end to end, read back through MLflow: one run per
(algorithm, seed), every CONTRACT.md metric family, and a matched samples budget."""

import json

import mlflow

import algorithms
from harness.cli import main

BUDGET = 320  # GRPO: 10 steps x 32; A*-PO and BASIS: 256 offline samples (charged) + 2 steps x 32
SAMPLES_PER_STEP = 32


def test_compare_smoke_matches_budgets_and_logs_every_metric_family(tiny_model_dir, tmp_path):
    out = tmp_path / "results"
    code = main(["compare", "--preset", "smoke", "--model", str(tiny_model_dir), "--output-dir", str(out),
                 "--budget", f"samples={BUDGET}", "--steps", "1000", "--eval-limit", "8", "--eval-every", "4",
                 "--threads", "1", "--engine", "hf", "--seeds", "0", "1"])
    assert code == 0
    uri = f"sqlite:///{out}/mlflow.db"
    mlflow.set_tracking_uri(uri)
    runs = mlflow.search_runs(experiment_names=["smoke"], output_format="list")
    parents = [r for r in runs if "algorithm" not in r.data.tags]  # the comparison's own run
    assert len(parents) == 1 and parents[0].info.status == "FINISHED"
    runs = [r for r in runs if "algorithm" in r.data.tags]
    assert all(r.data.tags["mlflow.parentRunId"] == parents[0].info.run_id for r in runs)
    grid = sorted((r.data.tags["algorithm"], int(r.data.tags["seed"])) for r in runs)
    assert grid == sorted((a, s) for a in algorithms.names() for s in (0, 1))
    families = ("eval/accuracy", "train/reward_mean", "train/kl_ref", "train/loss", "timing_s/generate",
                "timing_s/update", "time/wall_s", "perf/peak_memory_gb", "perf/max_rss_gb", "perf/tokens_per_s",
                "budget/samples", "budget/generated_tokens", "budget/flops", "budget/seconds")
    for r in runs:
        name = f"{r.data.tags['algorithm']}-seed{r.data.tags['seed']}"
        assert r.info.status == "FINISHED", name
        assert r.data.tags["budget_kind"] == "samples", name
        # BASIS's preset has no KL term, so it computes no reference log-probs and logs no kl_ref.
        expected = [f for f in families if not (f == "train/kl_ref" and r.data.tags["algorithm"] == "basis")]
        missing = [f for f in expected if f not in r.data.metrics]
        assert not missing, (name, missing)
        samples = r.data.metrics["budget/samples"]
        assert BUDGET <= samples < BUDGET + SAMPLES_PER_STEP, (name, samples)
        if r.data.tags["algorithm"] in ("a_star_po", "basis"):
            assert r.data.metrics["timing_s/offline"] > 0, name  # the offline stage is charged, and timed
        record = json.loads((out / "smoke" / "runs" / f"{name}.json").read_text())
        assert record["mlflow_run_id"] == r.info.run_id
        for point in record["eval_curve"]:  # curves comparable on every axis
            assert {"budget/samples", "budget/generated_tokens", "budget/flops", "budget/seconds"} <= set(point)
    assert (out / "smoke" / "leaderboard.csv").exists()


def test_compare_rejects_a_bad_worker_count_before_any_run(tmp_path, capsys):
    out = tmp_path / "results"
    assert main(["compare", "--preset", "smoke", "--workers", "0", "--output-dir", str(out)]) == 2
    assert "--workers" in capsys.readouterr().err
    assert not (out / "smoke" / "runs").exists()


def test_compare_rejects_a_setting_one_algorithm_refuses_before_any_run(tmp_path, capsys):
    # `scale_by_std` is a GRPO hyperparameter; A*-PO has none: the grid stops before GRPO's runs start.
    out = tmp_path / "results"
    args = ["compare", "--preset", "smoke", "--algorithms", "grpo", "a_star_po", "--set", "scale_by_std=false",
            "--output-dir", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "a_star_po" in err and "scale_by_std" in err
    assert not (out / "smoke" / "runs").exists()
