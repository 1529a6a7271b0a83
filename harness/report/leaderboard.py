"""The leaderboard's numbers: one row per algorithm, computed from its runs (one per seed).

Definitions (also printed under the tables):
- final accuracy: the last held-out evaluation (`summary.accuracy_after`); its IQM and mean over
  seeds, each with a 95 % stratified-bootstrap interval (`stats.iqm_ci`, `stats.bootstrap_ci`)
  from 3 seeds on; below 3 seeds, the range (min, max) and n instead;
- probability of improvement: P(a seed of this algorithm ends above a seed of the baseline), ties
  half (`stats.probability_of_improvement`), with its interval from 3 seeds on;
- rank: 1 + the number of algorithms whose whole IQM interval (below 3 seeds: whole range) lies
  above this one's (ties where they overlap);
- matched budget points: per axis, the largest budget every run reached (the minimum of the
  runs' final budgets); accuracy there is read off each run's evaluation curve (linear between
  evaluations) and averaged over seeds;
- time to target: training seconds (`budget/seconds`: compute of the training steps plus charged
  offline stages, evaluation excluded) at which the evaluation curve first reaches the target
  accuracy, linear between evaluations; averaged over the seeds that reach it;
- ratios against the baseline as the A*-PO paper reports them: "x times faster" = baseline
  seconds / this algorithm's seconds; "% less memory" = 100 (baseline - this) / baseline, on the
  means over seeds;
- peak memory: on a GPU the trainer's, the run's maximum of `perf/max_memory_allocated_gb`, with
  the engine's share (`perf/engine_memory_gb`, its maximum) beside it, not in it; on the CPU
  `perf/peak_memory_gb`, the process's max RSS.
"""

from __future__ import annotations

import math

import harness.report.stats as stats

AXES = {"samples": "budget/samples", "tokens": "budget/generated_tokens", "flops": "budget/flops",
        "seconds": "budget/seconds"}
# What `harness.callbacks.GpuMemory` logs each step on CUDA (a CPU run logs neither).
TRAINER_GPU_PEAK = "perf/max_memory_allocated_gb"
ENGINE_GPU_SHARE = "perf/engine_memory_gb"


def by_algorithm(records: list[dict]) -> dict[str, list[dict]]:
    groups: dict[str, list[dict]] = {}
    for record in records:
        groups.setdefault(record["algorithm"], []).append(record)
    return {name: sorted(runs, key=lambda r: r["seed"]) for name, runs in sorted(groups.items())}


def curve(record: dict, key: str) -> tuple[list[float], list[float]]:
    """(budget on axis `key`, accuracy) at each evaluation of the run."""
    points = record["eval_curve"]
    return [float(p[key]) for p in points], [float(p["eval/accuracy"]) for p in points]


def default_target(records: list[dict], baseline: str | None = None) -> float:
    """The highest accuracy every seed of the baseline reached at some evaluation (every run when
    there is no baseline): "how fast does each algorithm get to where the baseline reliably gets".
    nan when that is no better than where those runs started (nothing was learned to time)."""
    runs = [r for r in records if r["algorithm"] == baseline] or records
    target = min(max(p["eval/accuracy"] for p in r["eval_curve"]) for r in runs)
    start = max(r["eval_curve"][0]["eval/accuracy"] for r in runs)
    return target if target > start else math.nan


def matched_points(records: list[dict]) -> dict[str, float]:
    return {axis: min(float(r["eval_curve"][-1][key]) for r in records) for axis, key in AXES.items()}


def phase_seconds(record: dict) -> dict[str, float]:
    """Seconds per phase over the whole run, from the `timing_s/<phase>` metrics of its history
    (`timing_s/step` is their per-step sum and is left out)."""
    totals: dict[str, float] = {}
    for entry in record.get("history") or []:
        for key, value in entry.items():
            if key.startswith("timing_s/") and key != "timing_s/step" and value is not None:
                phase = key.removeprefix("timing_s/")
                totals[phase] = totals.get(phase, 0.0) + float(value)
    return totals


def final(record: dict, key: str) -> float:
    value = record["final_metrics"].get(key)
    return math.nan if value is None else float(value)


def run_max(record: dict, key: str) -> float:
    """The largest finite value of metric `key` over the run's steps (`history`) and its final
    metrics; nan when the run never logged it."""
    entries = [*(record.get("history") or []), record.get("final_metrics") or {}]
    values = stats.finite(float(e[key]) for e in entries if e.get(key) is not None)
    return max(values) if values else math.nan


def on_gpu(record: dict) -> bool:
    """Whether the run logged the trainer's CUDA memory (it trained on a GPU)."""
    return math.isfinite(run_max(record, TRAINER_GPU_PEAK))


def peak_memory_gb(record: dict) -> float:
    """The figure compared. On a GPU the trainer's peak: the maximum over the run's steps of
    `perf/max_memory_allocated_gb` (peak counters reset every step, max over DDP processes), from
    the history, so a resumed run counts its steps before the resume too; the engine's share is
    apart (`engine_memory_gb`). On the CPU `perf/peak_memory_gb`, the process's max RSS."""
    return run_max(record, TRAINER_GPU_PEAK) if on_gpu(record) else final(record, "perf/peak_memory_gb")


def engine_memory_gb(record: dict) -> float:
    """An in-process vLLM's share of the GPU, the run's maximum of `perf/engine_memory_gb`; nan
    on the CPU and for the HF engine (its KV cache is a trainer tensor, counted in the peak)."""
    return run_max(record, ENGINE_GPU_SHARE)


def wall_seconds(record: dict) -> float:
    """The training call's wall time (evaluations included) plus the offline stage's seconds, which
    run before it: what a user waits for, as the A*-PO paper counts its stage 1."""
    wall = record["summary"].get("wall_s")
    if wall is None:
        return math.nan
    return float(wall) + phase_seconds(record).get("offline", 0.0)


def seconds_to_target(record: dict, target: float) -> float:
    xs, ys = curve(record, AXES["seconds"])
    return stats.first_crossing(xs, ys, target)


def _mean_ci(prefix: str, values: list[float]) -> dict:
    """Mean, its interval (nan below 3 seeds) and the range."""
    low, high = stats.bootstrap_ci(values)
    kept = stats.finite(values)
    return {f"{prefix}_mean": stats.mean(values), f"{prefix}_ci_low": low, f"{prefix}_ci_high": high,
            f"{prefix}_min": min(kept) if kept else math.nan, f"{prefix}_max": max(kept) if kept else math.nan}


def spread(row: dict) -> tuple[float, float]:
    """What the rank compares: the IQM interval from 3 seeds on, else the range of the seeds."""
    if row["seeds"] >= stats.MIN_SEEDS_FOR_INTERVAL:
        return row["accuracy_iqm_ci_low"], row["accuracy_iqm_ci_high"]
    return row["accuracy_min"], row["accuracy_max"]


def algorithm_row(algorithm: str, runs: list[dict], target: float, matched: dict[str, float]) -> dict:
    accuracy = [float(r["summary"]["accuracy_after"]) for r in runs]
    to_target = [seconds_to_target(r, target) for r in runs]
    row = {"algorithm": algorithm, "seeds": len(runs)}
    row.update(_mean_ci("accuracy", accuracy))
    row["accuracy_iqm"] = stats.iqm(accuracy)
    row["accuracy_iqm_ci_low"], row["accuracy_iqm_ci_high"] = stats.iqm_ci(accuracy)
    row["accuracy_before_mean"] = stats.mean([r["summary"]["accuracy_before"] for r in runs])
    for axis, key in AXES.items():
        row[f"accuracy_at_matched_{axis}"] = stats.mean(
            [stats.interpolate(*curve(r, key), matched[axis]) for r in runs])
    row.update(_mean_ci("wall_s", [wall_seconds(r) for r in runs]))
    row["seconds_to_target_mean"] = stats.mean(to_target)
    row["seeds_reaching_target"] = sum(math.isfinite(t) for t in to_target)
    row.update(_mean_ci("peak_memory_gb", [peak_memory_gb(r) for r in runs]))
    gpu = {on_gpu(r) for r in runs}
    row["peak_memory_source"] = ("mixed" if len(gpu) > 1 else "gpu_max_allocated" if gpu == {True}
                                 else "cpu_max_rss")
    row.update(_mean_ci("engine_memory_gb", [engine_memory_gb(r) for r in runs]))
    row["peak_heap_gb_mean"] = stats.mean([final(r, "perf/peak_heap_gb") for r in runs])  # CPU runs; nan on others
    row["samples_mean"] = stats.mean([final(r, "budget/samples") for r in runs])
    row["generated_tokens_mean"] = stats.mean([final(r, "budget/generated_tokens") for r in runs])
    row["flops_mean"] = stats.mean([final(r, "budget/flops") for r in runs])
    row["budget_seconds_mean"] = stats.mean([final(r, "budget/seconds") for r in runs])
    row["kl_ref_mean"] = stats.mean([final(r, "train/kl_ref") for r in runs])
    row["steps_mean"] = stats.mean([r["eval_curve"][-1]["step"] for r in runs])
    return row


def leaderboard(records: list[dict], baseline: str | None = "grpo", target_accuracy: float | None = None) -> dict:
    """{"rows": [...], "baseline", "target_accuracy", "target_is_default", "matched", "on_gpu"}; rows
    sorted by rank. `on_gpu`: some run trained on a GPU (the tables then show the engine's share)."""
    if not records:
        raise ValueError("no runs to report")
    groups = by_algorithm(records)
    if baseline is not None and baseline not in groups:
        raise ValueError(f"--baseline {baseline!r}: no runs of it; algorithms in the runs: {', '.join(groups)}")
    target = default_target(records, baseline) if target_accuracy is None else float(target_accuracy)
    matched = matched_points(records)
    rows = [algorithm_row(name, runs, target, matched) for name, runs in groups.items()]
    ranks = stats.ranks_with_ties({r["algorithm"]: spread(r) for r in rows},
                                  {r["algorithm"]: r["accuracy_iqm"] for r in rows})
    base = next((r for r in rows if r["algorithm"] == baseline), None)
    final_accuracy = {name: [float(r["summary"]["accuracy_after"]) for r in runs] for name, runs in groups.items()}
    for row in rows:
        row["rank"] = ranks[row["algorithm"]]
        if base is None or row is base:
            row["poi_over_baseline"] = row["poi_ci_low"] = row["poi_ci_high"] = math.nan
        else:
            mine, theirs = final_accuracy[row["algorithm"]], final_accuracy[baseline]
            row["poi_over_baseline"] = stats.probability_of_improvement(mine, theirs)
            row["poi_ci_low"], row["poi_ci_high"] = stats.probability_of_improvement_ci(mine, theirs)
        if base is None:
            row["times_faster_to_target"] = row["times_faster_wall"] = row["percent_less_memory"] = math.nan
            continue
        row["times_faster_to_target"] = stats.times_faster(base["seconds_to_target_mean"], row["seconds_to_target_mean"])
        row["times_faster_wall"] = stats.times_faster(base["wall_s_mean"], row["wall_s_mean"])
        row["percent_less_memory"] = stats.percent_less_memory(base["peak_memory_gb_mean"], row["peak_memory_gb_mean"])
    rows.sort(key=lambda r: (r["rank"], -r["accuracy_iqm"] if math.isfinite(r["accuracy_iqm"]) else 0.0,
                             r["algorithm"]))
    return {"rows": rows, "baseline": base and baseline, "target_accuracy": target,
            "target_is_default": target_accuracy is None, "matched": matched,
            "on_gpu": any(on_gpu(r) for r in records)}
