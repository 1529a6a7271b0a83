"""Leaderboard reports: `results/<experiment>/leaderboard.{md,html,csv}` from stored runs.

A pure function of the run records (the JSON files or the MLflow experiment): imports no
training code (no torch, Lightning or algorithms) and runs in seconds.
"""

from __future__ import annotations

import math
from pathlib import Path

from harness.paths import experiment_dir, write_text_atomic
from harness.report.leaderboard import by_algorithm, leaderboard
from harness.report.load import load_runs

__all__ = ["build_report", "leaderboard", "load_runs", "write_report"]

NOTES = [
    "Final accuracy: pass@1 on the held-out set at the last evaluation; its interquartile mean (IQM: the mean of "
    "the middle 50% of seeds) and mean over seeds, as Agarwal et al. (NeurIPS 2021, rliable) recommend, each with "
    "a 95% stratified percentile bootstrap interval (10,000 resamples of the seeds, numpy default_rng(0)) from 3 "
    "seeds on. Below 3 seeds there is no interval: the mean column gives the range of the seeds and n.",
    "P(better than the baseline): the probability that a seed of this algorithm ends above a seed of the baseline, "
    "ties counting half (rliable's probability of improvement, Mann-Whitney U / (n_x n_y)); interval from 3 seeds on.",
    "Rank: 1 + the number of algorithms whose whole IQM interval (below 3 seeds: whole range of seeds) lies above "
    "this one's; overlapping ones share a rank.",
    "Matched budget: per axis, the largest budget every run reached (the smallest final budget); accuracy read off "
    "each run's evaluation curve, linear between evaluations (before the first evaluation, the starting policy's).",
    "Time to target: training seconds (budget/seconds: training steps plus charged offline stages, evaluation "
    "excluded) at which a run's evaluation curve first reaches the target accuracy, linear between evaluations; "
    "mean over the seeds that reach it (count in brackets).",
    "Ratios against the baseline as in the A*-PO paper: x times faster = baseline seconds / these seconds; "
    "% less memory = 100 x (baseline - this) / baseline peak memory; both on the means over seeds.",
    "Peak memory: perf/peak_memory_gb (GPU max allocated on CUDA, peak RSS of the run's own process on CPU); "
    "peak heap (CPU): perf/peak_heap_gb, the most bytes malloc had handed out and not taken back, without the "
    "freed memory the allocator keeps, which RSS counts. "
    "Wall s: the training call, evaluations included, plus the offline stage (A*-PO's stage 1, BASIS's prior), "
    "which runs before it. KL to ref: the last step's train/kl_ref (k3).",
]
GPU_NOTE = (
    "On a GPU: peak memory (trainer) is the largest perf/max_memory_allocated_gb of the run's steps, the "
    "trainer's live tensors (peak counters reset at each step's start, so evaluation and the offline stage do not "
    "count; max over DDP processes); engine GB is the largest perf/engine_memory_gb, an in-process vLLM's share "
    "(weights, KV cache, CUDA graphs, measured right after its generation), beside the trainer's peak and not in it "
    "nor in % less memory; – where the engine has no share of its own (the HF engine's KV cache is a trainer "
    "tensor). Runs without GPU metrics show their max RSS. Peak heap: the host process's.")


def notes(board: dict) -> list[str]:
    """The notes under the tables; the GPU memory note when some run trained on a GPU."""
    return NOTES + ([GPU_NOTE] if board.get("on_gpu") else [])


def held_out_splits(records: list[dict]) -> str:
    """Which split each accuracy comes from: `test`, or `validation` carved from the train split
    (harness.splits); runs recorded before the setting existed evaluated on test."""
    counts: dict[str, set] = {}
    for r in records:
        split = str((r.get("config") or {}).get("eval_split") or "test")
        examples = ((r.get("data") or {}).get("eval") or {}).get("examples")
        counts.setdefault(split, set()).add(examples)
    parts = []
    for split, sizes in sorted(counts.items()):
        known = sorted(n for n in sizes if n is not None)
        size = f" ({'/'.join(str(n) for n in known)} examples)" if known else ""
        parts.append(f"`{split}`{size}" + (" carved from the train split, disjoint from the training prompts"
                                           if split == "validation" else ""))
    return " and ".join(parts)


def _describe(records: list[dict], board: dict) -> list[str]:
    values = lambda key: sorted({str(r.get(key)) for r in records})  # noqa: E731
    groups = by_algorithm(records)
    if math.isnan(board["target_accuracy"]):
        target = ("none: the baseline's seeds never all got above their starting accuracy, so there is no "
                  "time to target (set one with --target-accuracy)")
    else:
        target = f"{board['target_accuracy']:.3f}" + (
            " (default: the highest accuracy every seed of the baseline reached; set it with --target-accuracy)"
            if board["target_is_default"] else "")
    return [
        f"{len(records)} runs: {', '.join(f'{n} x{len(r)}' for n, r in groups.items())}. "
        f"Task {', '.join(values('task'))}; model {', '.join(values('model'))}; engine {', '.join(values('engine'))}; "
        f"budget {', '.join(b if b != 'None' else 'none (max_steps)' for b in values('budget'))}.",
        f"Accuracy is measured on the held-out split {held_out_splits(records)}.",
        f"Baseline for the ratios: {board['baseline'] or 'none (no runs of the requested baseline)'}; "
        f"target accuracy {target}.",
    ]


def build_report(records: list[dict], experiment: str, baseline: str | None = "grpo",
                 target_accuracy: float | None = None) -> dict[str, str]:
    """{"md", "html", "csv"}: the three documents as text."""
    from harness.report import html, plots, reproducibility, tables

    board = leaderboard(records, baseline=baseline, target_accuracy=target_accuracy)
    headline = tables.headline_rows(board)
    budget = tables.budget_rows(board)
    repro = reproducibility.sections(records)
    intro = _describe(records, board)
    title = f"Leaderboard: {experiment}"
    md = [f"# {title}", "", *intro, "", "## Leaderboard", "", tables.markdown_table(*headline), "",
          "## Matched budget and cost", "", tables.markdown_table(*budget), "",
          "Figures (accuracy against each budget axis, peak memory, time per phase, value error): "
          "`leaderboard.html`.", "", "## How the numbers are computed", ""]
    md += [f"- {note}" for note in notes(board)]
    md += ["", "## Reproducibility", ""]
    for heading, text in repro:
        md += [f"### {heading}", "", "```", text, "```", ""]
    figures = plots.all_figures(by_algorithm(records))
    page = html.page(title, intro, [("Leaderboard", "leaderboard", *headline),
                                    ("Matched budget and cost", "budget", *budget)], figures, notes(board), repro)
    return {"md": "\n".join(md), "html": page, "csv": tables.to_csv(board)}


def write_report(experiment: str, output_dir: str | Path = "results", baseline: str | None = "grpo",
                 target_accuracy: float | None = None, tracking_uri: str | None = None) -> dict[str, Path]:
    """Load the runs, build the report, write `<output_dir>/<experiment>/leaderboard.{md,html,csv}`."""
    records = load_runs(experiment, output_dir, tracking_uri)
    documents = build_report(records, experiment, baseline, target_accuracy)
    folder = experiment_dir(output_dir, experiment)
    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for kind, text in documents.items():
        path = folder / f"leaderboard.{kind}"
        write_text_atomic(path, text)
        paths[kind] = path
    return paths
