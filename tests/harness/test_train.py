"""End to end on the tiny warm start: MLflow contents, run files, determinism, compare."""

import json
import warnings

import mlflow
import pytest

from harness.run_module import quiet_lightning
from harness.train import run_training


def test_quiet_lightning_drops_lightnings_pytree_deprecation_only():
    from lightning.pytorch.utilities._pytree import _tree_flatten

    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _tree_flatten(3)  # Lightning's own call into a deprecated torch API
        assert any("LeafSpec" in str(w.message) for w in seen)
        seen.clear()
        quiet_lightning()
        _tree_flatten(3)
        warnings.warn("ours", FutureWarning)
    assert [str(w.message) for w in seen] == ["ours"]


def test_smoke_run_logs_contract_metrics_to_mlflow_and_json(make_run):
    run = make_run("smoke", algorithm="grpo", seed=0)
    record = run_training(run, progress=False)
    mlflow.set_tracking_uri(run.tracking())
    runs = mlflow.search_runs(experiment_names=[run.experiment], output_format="list")
    assert len(runs) == 1
    logged = runs[0]
    assert logged.info.status == "FINISHED"
    assert {k: logged.data.tags[k] for k in ("algorithm", "seed", "task", "engine")} == {
        "algorithm": "grpo", "seed": "0", "task": "arithmetic", "engine": "hf"}
    metrics = logged.data.metrics
    for name in ("eval/accuracy", "train/reward_mean", "train/kl_ref", "train/entropy", "train/loss",
                 "timing_s/generate", "timing_s/reward", "timing_s/reference", "timing_s/update",
                 "timing_s/eval", "time/wall_s", "perf/peak_memory_gb", "perf/tokens_per_s",
                 "budget/samples", "budget/generated_tokens", "budget/flops", "budget/seconds"):
        assert name in metrics, name
    # The CPU's heap peak, in GB: more than the policy with Adam's moments (~10 MB), less than max RSS.
    assert 0.01 < metrics["perf/peak_heap_gb"] < metrics["perf/max_rss_gb"]
    # smoke: 3 steps x 4 prompts x 8 samples
    assert metrics["budget/samples"] == 3 * 4 * 8
    assert logged.data.params["algo.samples_per_prompt"] == "8"
    history = mlflow.MlflowClient(run.tracking()).get_metric_history(logged.info.run_id, "eval/accuracy")
    assert sorted(m.step for m in history) == [0, 2, 3]
    # Metrics go out in batches (harness.mlflow_logger): every step's value arrived, nothing is left.
    sent = mlflow.MlflowClient(run.tracking()).get_metric_history(logged.info.run_id, "train/loss")
    kept = [(row["step"], row["train/loss"]) for row in record["history"] if "train/loss" in row]
    assert sorted((m.step, m.value) for m in sent) == kept and len(kept) == 3
    assert record["faults"]["tracking"] == {"failures": 0, "first_error": None, "unsent_metric_values": 0}
    on_disk = json.loads(open(f"{run.output_dir}/smoke/runs/grpo-seed0.json").read())
    assert on_disk["mlflow_run_id"] == logged.info.run_id
    assert on_disk["final_metrics"]["budget/samples"] == 96
    assert [p["step"] for p in on_disk["eval_curve"]] == [0, 2, 3]
    assert on_disk["environment"]["versions"]["torch"]


def test_same_seed_logs_identical_metrics(make_run, tmp_path, deterministic_history):
    records = [run_training(make_run("smoke", algorithm="grpo", seed=1, output_dir=str(tmp_path / f"r{i}")),
                            progress=False) for i in range(2)]
    first, second = (deterministic_history(record["history"]) for record in records)
    assert first == second
    assert any("train/loss" in row for row in first)


def test_evaluation_before_training_is_shared_by_runs_from_the_same_weights(make_run, tmp_path, monkeypatch):
    """The algorithms of one seed start from the same weights with the same evaluation seed: the
    first run computes the evaluation before training, the next reads it; another seed (another
    evaluation seed) or a changed model folder computes its own."""
    monkeypatch.setenv("RLVR_CACHE_DIR", str(tmp_path / "cache"))

    def before(algorithm, seed, name, **overrides):
        run = make_run("smoke", algorithm=algorithm, seed=seed, output_dir=str(tmp_path / name), max_steps=1,
                       **overrides)
        return run_training(run, progress=False)["eval_curve"][0]

    def numbers(point):
        return {k: v for k, v in point.items() if k.startswith("eval/")}

    first = before("grpo", 0, "a")
    assert "reused" not in first
    assert len(list((tmp_path / "cache" / "evals").glob("*.json"))) == 1
    second = before("rebel", 0, "b")
    assert second.get("reused") is True
    assert numbers(second) == numbers(first)
    assert second["timing_s/eval"] < first["timing_s/eval"]
    other_seed = before("rebel", 1, "c")
    assert "reused" not in other_seed
    # Computed again from scratch, the shared numbers are what the run would have measured.
    for cached in (tmp_path / "cache" / "evals").glob("*.json"):
        cached.unlink()
    fresh = before("rebel", 0, "d")
    assert "reused" not in fresh and numbers(fresh) == numbers(first)


def test_a_rebuilt_model_folder_is_a_different_model_for_the_caches(tiny_model_dir, tmp_path):
    import os
    import shutil

    from harness.models import model_fingerprint

    copy = shutil.copytree(tiny_model_dir, tmp_path / "model")
    before = model_fingerprint(str(copy))
    assert model_fingerprint(str(copy)) == before
    weights = next(copy.glob("*.safetensors"))
    os.utime(weights, ns=(weights.stat().st_atime_ns, weights.stat().st_mtime_ns + 1_000_000))
    assert model_fingerprint(str(copy)) != before
    assert model_fingerprint("HuggingFaceTB/SmolLM2-135M-Instruct") == "HuggingFaceTB/SmolLM2-135M-Instruct"


def test_compare_runs_the_grid_once_and_skips_finished_runs(make_run, tiny_model_dir, tmp_path, capsys):
    import os

    from harness.compare import run_comparison

    overrides = {"output_dir": str(tmp_path / "results"), "model": str(tiny_model_dir)}
    # Two at a time, side by side, each pinned to its half of the cores with as many torch threads.
    first = run_comparison("smoke", overrides, algorithms=["basis", "rebel"], seeds=[0, 1], workers=2)
    assert [(r["algorithm"], r["seed"]) for r in first] == [("basis", 0), ("basis", 1), ("rebel", 0), ("rebel", 1)]
    half = len(os.sched_getaffinity(0)) // 2
    assert [r["environment"]["torch_threads"] for r in first] == [half] * 4
    assert capsys.readouterr().out.count(" on cores ") == 4
    again = run_comparison("smoke", overrides, algorithms=["basis", "rebel"], seeds=[0, 1])
    out = capsys.readouterr().out
    assert out.count("already finished") == 4
    assert [r["mlflow_run_id"] for r in again] == [r["mlflow_run_id"] for r in first]
    assert "| basis | 2 |" in out and "| rebel | 2 |" in out
    # Other settings under the same experiment: refused before any run, naming the file and the
    # setting; the finished runs stay as they were.
    finished = sorted((tmp_path / "results" / "smoke" / "runs").glob("*.json"))
    kept = [f.read_bytes() for f in finished]
    with pytest.raises(ValueError, match=r"basis-seed0\.json: finished with other settings.*max_steps: 3 there, 4 now"):
        run_comparison("smoke", {**overrides, "max_steps": 4}, algorithms=["basis", "rebel"], seeds=[0, 1])
    assert [f.read_bytes() for f in finished] == kept


def test_budget_stops_each_run_within_one_step_of_the_limit(make_run, tmp_path):
    # smoke: 32 samples per step; BASIS's offline prior costs 32 prompts x 8 = 256 samples, charged.
    for algorithm in ("grpo", "basis"):
        run = make_run("smoke", algorithm=algorithm, seed=0, budget="samples=400", max_steps=1000, eval_every=0,
                       output_dir=str(tmp_path / algorithm))
        record = run_training(run, progress=False)
        final = record["final_metrics"]
        assert 400 <= final["budget/samples"] < 400 + 32, (algorithm, final["budget/samples"])
        for axis in ("budget/samples", "budget/generated_tokens", "budget/flops", "budget/seconds"):
            assert final[axis] > 0 and all(axis in point for point in record["eval_curve"])
    assert record["summary"]["steps"] == (400 - 256 + 31) // 32


def test_lr_warmup_rises_linearly_to_every_optimizers_rate(make_run):
    from harness.checkpoint import load_checkpoint
    from harness.paths import checkpoint_path
    from harness.config import algorithm_config

    # PPO: the policy's optimizer and the critic's both warm up.
    run = make_run("smoke", algorithm="ppo", seed=0, max_steps=3, eval_every=0, keep_checkpoint=True,
                   algo={"lr": 1e-3, "critic_lr": 1e-2, "lr_warmup_steps": 4})
    record = run_training(run, progress=False)
    lrs = [row["train/lr"] for row in record["history"] if "train/lr" in row]
    assert lrs == pytest.approx([2.5e-4, 5e-4, 7.5e-4])
    optimizers = load_checkpoint(checkpoint_path(run))["optimizers"]
    assert [o["param_groups"][0]["lr"] for o in optimizers] == pytest.approx([7.5e-4, 7.5e-3])
    with pytest.raises(ValueError, match="lr_warmup_steps"):
        algorithm_config(make_run("smoke", algorithm="grpo", algo={"lr_warmup_steps": -1}))
