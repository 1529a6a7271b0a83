"""Synthetic-but-realistic run records with known numbers, in the shape `rlvr-bench train` writes."""

from __future__ import annotations

EXPERIMENT = "synth"
EVAL_STEPS = (0, 5, 10)
START_ACCURACY = 0.25
# Per algorithm: final accuracy, peak memory GB and wall seconds per seed; seconds per step;
# charged offline seconds and samples (A*-PO's stage 1).
SPEC = {
    "grpo": {"final": [0.40, 0.44, 0.42], "peak": [1.00, 1.10, 1.05], "wall": [120.0, 130.0, 125.0],
             "step_s": 10.0, "offline_s": 0.0, "offline_samples": 0},
    "a_star_po": {"final": [0.41, 0.45, 0.43], "peak": [0.90, 0.95, 0.92], "wall": [60.0, 66.0, 63.0],
                  "step_s": 5.0, "offline_s": 8.0, "offline_samples": 256},
    "ppo": {"final": [0.20, 0.22], "peak": [1.5, 1.6], "wall": [200.0, 210.0],
            "step_s": 18.0, "offline_s": 0.0, "offline_samples": 0},
}
SAMPLES_PER_STEP = 32
TOKENS_PER_SAMPLE = 6
PARAMETERS = 870_000


def accuracy_curve(final: float) -> list[float]:
    return [START_ACCURACY, (START_ACCURACY + final) / 2, final]


def budget_at(algorithm: str, step: int) -> dict:
    spec = SPEC[algorithm]
    samples = step * SAMPLES_PER_STEP + spec["offline_samples"]
    tokens = samples * TOKENS_PER_SAMPLE
    return {"budget/samples": float(samples), "budget/generated_tokens": float(tokens),
            "budget/flops": 2.0 * PARAMETERS * tokens * 3, "budget/seconds": spec["offline_s"] + step * spec["step_s"]}


def make_record(algorithm: str, index: int) -> dict:
    spec = SPEC[algorithm]
    seed = index
    accuracies = accuracy_curve(spec["final"][index])
    curve = [{"step": s, "eval/accuracy": a, "eval/response_length": 5.0, "timing_s/eval": 2.0, **budget_at(algorithm, s)}
             for s, a in zip(EVAL_STEPS, accuracies)]
    history = []
    if spec["offline_s"]:
        history.append({"step": 0, "timing_s/offline": spec["offline_s"], "offline/samples": float(spec["offline_samples"])})
    for point in curve[:1]:
        history.append({"step": 0, "eval/accuracy": point["eval/accuracy"], "timing_s/eval": 2.0})
    for step in range(1, EVAL_STEPS[-1] + 1):
        entry = {"step": step, "timing_s/generate": 0.6 * spec["step_s"], "timing_s/reward": 0.1 * spec["step_s"],
                 "timing_s/update": 0.3 * spec["step_s"], "timing_s/step": spec["step_s"],
                 "train/kl_ref": 0.001 * step, "train/reward_mean": 0.3, **budget_at(algorithm, step),
                 "perf/peak_memory_gb": spec["peak"][index]}
        if algorithm == "ppo":
            entry["train/value_mse"] = 0.5 / step
        history.append(entry)
        if step in EVAL_STEPS:
            history.append({"step": step, "eval/accuracy": accuracies[EVAL_STEPS.index(step)], "timing_s/eval": 2.0})
    final = {**history[-2], **curve[-1], "perf/peak_memory_gb": spec["peak"][index],
             "perf/max_rss_gb": spec["peak"][index], "perf/peak_heap_gb": spec["peak"][index] / 3,
             "time/wall_s": spec["wall"][index] + 1.0}
    final.pop("step")
    diag = []
    if algorithm == "grpo":
        diag = [{"step": s, "diag/value_mse/batch_mean": 0.2 - 0.01 * s, "diag/value_mse/prior": 0.1 + 0.001 * s,
                 "diag/value_mse/calibrated": 0.05} for s in EVAL_STEPS]
    return {
        "algorithm": algorithm, "seed": seed, "task": "arithmetic", "model": "tiny", "engine": "hf",
        "experiment": EXPERIMENT, "budget": None,
        "config": {"algorithm": algorithm, "seed": seed, "max_steps": 10, "samples_per_step": 32, "algo.lr": 1e-4},
        "environment": {"python": "3.11.2", "platform": "Linux-test", "machine": "x86_64", "cpu_count": 2,
                        "torch_threads": 1, "cuda": None, "versions": {"torch": "2.13.0", "mlflow": "3.1"},
                        "git_commit": "0123456789abcdef0123456789abcdef01234567"},
        "command": ["rlvr-bench", "compare", "--experiment", EXPERIMENT, "--seeds", "0", "1", "2"],
        "data": {"data_dir": None, "train": {"examples": 320, "sha256": "a" * 64},
                 "eval": {"examples": 16, "sha256": "b" * 64}},
        "model_path": "/cache/models/tiny", "prompt_version": "1",
        "mlflow_run_id": f"run{algorithm}{seed}", "tracking_uri": "sqlite:///tmp/mlflow.db",
        "summary": {"accuracy_before": accuracies[0], "accuracy_after": accuracies[-1], "steps": 10,
                    "wall_s": spec["wall"][index], "parameters": PARAMETERS},
        "final_metrics": final, "eval_curve": curve, "diag_curve": diag, "history": history,
    }


def synthetic_records() -> list[dict]:
    return [make_record(name, i) for name, spec in SPEC.items() for i in range(len(spec["final"]))]
