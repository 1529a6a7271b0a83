"""The report's figures as base64 PNGs (matplotlib Agg, no pyplot state)."""

from __future__ import annotations

import base64
import io
import math

import matplotlib

matplotlib.use("Agg")
from matplotlib.figure import Figure  # noqa: E402

import numpy as np  # noqa: E402

import harness.report.stats as stats  # noqa: E402
from harness.report.leaderboard import (  # noqa: E402
    AXES,
    curve,
    engine_memory_gb,
    final,
    on_gpu,
    peak_memory_gb,
    phase_seconds,
)

AXIS_LABELS = {"samples": "samples", "tokens": "generated tokens", "flops": "FLOPs",
               "seconds": "training seconds (budget/seconds)"}
GRID_POINTS = 60


def colors(names) -> dict[str, tuple]:
    palette = matplotlib.colormaps["tab10"]
    return {name: palette(i % 10) for i, name in enumerate(sorted(names))}


def to_png(fig: Figure) -> str:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=90, bbox_inches="tight")
    return base64.b64encode(buffer.getvalue()).decode("ascii")


def accuracy_vs_budget(groups: dict[str, list[dict]]) -> str:
    """Held-out accuracy against each budget axis: mean over seeds, band from the lowest to the
    highest seed, on the budget range every seed of the algorithm covers."""
    fig = Figure(figsize=(11, 7.5))
    palette = colors(groups)
    for i, (axis, key) in enumerate(AXES.items()):
        ax = fig.add_subplot(2, 2, i + 1)
        for name, runs in groups.items():
            end = min(curve(r, key)[0][-1] for r in runs)
            grid = np.linspace(0.0, end, GRID_POINTS) if end > 0 else np.array([0.0])
            ys = np.array([[stats.interpolate(*curve(r, key), x) for x in grid] for r in runs])
            ax.plot(grid, ys.mean(0), color=palette[name], label=f"{name} ({len(runs)} seeds)")
            if len(runs) > 1:
                ax.fill_between(grid, ys.min(0), ys.max(0), color=palette[name], alpha=0.2, linewidth=0)
            for r in runs:
                ax.scatter(*curve(r, key), color=palette[name], s=8, alpha=0.6)
        ax.set_xlabel(AXIS_LABELS[axis])
        ax.set_ylabel("held-out accuracy (pass@1)")
        ax.grid(alpha=0.3)
        if i == 0:
            ax.legend(fontsize=8)
    fig.suptitle("Accuracy against each budget axis (line: mean over seeds; band: min-max over seeds; dots: evaluations)")
    return to_png(fig)


def peak_memory(groups: dict[str, list[dict]]) -> str:
    """Bars of the peak memory compared (`leaderboard.peak_memory_gb`) per algorithm. On a GPU a
    hatched bar beside gives the engine's share (`perf/engine_memory_gb`), where there is one; on
    the CPU, runs that carry `perf/peak_heap_gb` get a hatched bar of it (max RSS also counts freed
    memory the allocator keeps)."""
    fig = Figure(figsize=(7, 3.8))
    ax = fig.add_subplot(1, 1, 1)
    palette = colors(groups)
    names = list(groups)
    gpu = any(on_gpu(r) for runs in groups.values() for r in runs)
    beside = {name: stats.finite(engine_memory_gb(r) if gpu else final(r, "perf/peak_heap_gb") for r in groups[name])
              for name in names}
    width = 0.4 if any(beside.values()) else 0.8
    for i, name in enumerate(names):
        series = [(stats.finite(peak_memory_gb(r) for r in groups[name]), None)]
        if beside[name]:
            series.append((beside[name], "xx" if gpu else "//"))
        for j, (values, hatch) in enumerate(series):
            x = i + (j - 0.5) * width if width < 0.8 else i
            low, high = stats.bootstrap_ci(values)
            m = stats.mean(values)
            ax.bar(x, m, width=width, color=palette[name], alpha=0.8 if hatch is None else 0.4, hatch=hatch,
                   edgecolor="black" if hatch else None)
            if values and math.isfinite(low):
                ax.errorbar(x, m, yerr=[[m - low], [high - m]], color="black", capsize=4)
            ax.scatter([x] * len(values), values, color="black", s=10, zorder=3)
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("GB")
    if gpu:
        note = " on the GPU: the trainer's max allocated" + (" (solid) and the engine's share (hatched)"
                                                             if width < 0.8 else "")
    else:
        note = " (solid; max RSS on CPU) and peak heap (hatched: live bytes, not freed ones kept)" if width < 0.8 else ""
    ax.set_title(f"Peak memory per algorithm{note}\nbar: mean, whisker: 95% CI (from 3 seeds), dots: seeds", fontsize=9)
    ax.grid(axis="y", alpha=0.3)
    return to_png(fig)


def phase_split(groups: dict[str, list[dict]]) -> str:
    """Stacked bars: mean seconds per phase over the seeds of each algorithm."""
    per_algo = {}
    for name, runs in groups.items():
        totals = [phase_seconds(r) for r in runs]
        phases = sorted({p for t in totals for p in t})
        per_algo[name] = {p: float(np.mean([t.get(p, 0.0) for t in totals])) for p in phases}
    phases = sorted({p for split in per_algo.values() for p in split})
    fig = Figure(figsize=(8, 4.2))
    ax = fig.add_subplot(1, 1, 1)
    palette = matplotlib.colormaps["tab20"]
    names = list(groups)
    bottom = np.zeros(len(names))
    for j, phase in enumerate(phases):
        heights = np.array([per_algo[n].get(phase, 0.0) for n in names])
        ax.bar(range(len(names)), heights, bottom=bottom, label=phase, color=palette(j % 20))
        bottom += heights
    ax.set_xticks(range(len(names)), names)
    ax.set_ylabel("seconds (mean over seeds)")
    ax.set_title("Time split by phase")
    ax.legend(fontsize=8, bbox_to_anchor=(1.01, 1), loc="upper left")
    ax.grid(axis="y", alpha=0.3)
    return to_png(fig)


def _mean_by_step(entries: list[tuple[int, float]]) -> tuple[list[int], list[float]]:
    steps: dict[int, list[float]] = {}
    for step, value in entries:
        steps.setdefault(step, []).append(value)
    keys = sorted(steps)
    return keys, [float(np.mean(steps[k])) for k in keys]


def value_mse(groups: dict[str, list[dict]]) -> str | None:
    """The value-estimation diagnostic (`diag/value_mse/<estimator>`) and the critics' training
    `train/value_mse`, per step, mean over seeds; None when no run logged either."""
    diag = {name: runs for name, runs in groups.items() if any(r.get("diag_curve") for r in runs)}
    trained = {name: [(e["step"], e["train/value_mse"]) for r in runs for e in r.get("history") or []
                      if e.get("train/value_mse") is not None]
               for name, runs in groups.items()}
    trained = {name: entries for name, entries in trained.items() if entries}
    panels = len(diag) + (1 if trained else 0)
    if not panels:
        return None
    fig = Figure(figsize=(5.5 * min(panels, 3), 4 * math.ceil(panels / 3)))
    index = 0
    for name, runs in diag.items():
        index += 1
        ax = fig.add_subplot(math.ceil(panels / 3), min(panels, 3), index)
        keys = sorted({k for r in runs for p in r.get("diag_curve") or [] for k in p if k.startswith("diag/value_mse/")})
        for key in keys:
            steps, values = _mean_by_step([(p["step"], p[key]) for r in runs for p in r.get("diag_curve") or []
                                           if p.get(key) is not None])
            ax.plot(steps, values, marker="o", label=key.removeprefix("diag/value_mse/"))
        ax.set_yscale("log")
        ax.set_title(f"value diagnostic, {name} runs")
        ax.set_xlabel("step")
        ax.set_ylabel("MSE to Monte-Carlo value")
        ax.legend(fontsize=7)
        ax.grid(alpha=0.3)
    if trained:
        index += 1
        ax = fig.add_subplot(math.ceil(panels / 3), min(panels, 3), index)
        palette = colors(groups)
        for name, entries in trained.items():
            ax.plot(*_mean_by_step(entries), color=palette[name], label=name)
        ax.set_title("critic training loss train/value_mse")
        ax.set_xlabel("step")
        ax.legend(fontsize=8)
        ax.grid(alpha=0.3)
    return to_png(fig)


def all_figures(groups: dict[str, list[dict]]) -> dict[str, str | None]:
    return {"accuracy_vs_budget": accuracy_vs_budget(groups), "peak_memory": peak_memory(groups),
            "phase_split": phase_split(groups), "value_mse": value_mse(groups)}
