"""The leaderboard as CSV (every number, full precision) and as Markdown tables (rounded)."""

from __future__ import annotations

import csv
import io
import math

CSV_COLUMNS = (
    "rank", "algorithm", "seeds",
    "accuracy_iqm", "accuracy_iqm_ci_low", "accuracy_iqm_ci_high",
    "accuracy_mean", "accuracy_ci_low", "accuracy_ci_high", "accuracy_min", "accuracy_max",
    "poi_over_baseline", "poi_ci_low", "poi_ci_high", "accuracy_before_mean",
    "accuracy_at_matched_samples", "accuracy_at_matched_tokens", "accuracy_at_matched_flops",
    "accuracy_at_matched_seconds",
    "wall_s_mean", "wall_s_ci_low", "wall_s_ci_high", "times_faster_wall",
    "seconds_to_target_mean", "seeds_reaching_target", "times_faster_to_target",
    "peak_memory_gb_mean", "peak_memory_gb_ci_low", "peak_memory_gb_ci_high", "percent_less_memory",
    "samples_mean", "generated_tokens_mean", "flops_mean", "budget_seconds_mean", "kl_ref_mean", "steps_mean",
    "peak_heap_gb_mean",
    "peak_memory_source", "engine_memory_gb_mean", "engine_memory_gb_ci_low", "engine_memory_gb_ci_high",
)


def _cell(value) -> str:
    if isinstance(value, float):
        return "" if not math.isfinite(value) else repr(value)
    return str(value)


def to_csv(board: dict) -> str:
    """One row per algorithm; empty cells where a number is undefined (no baseline, target not reached)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(CSV_COLUMNS)
    for row in board["rows"]:
        writer.writerow([_cell(row[c]) for c in CSV_COLUMNS])
    return out.getvalue()


def fmt(value, spec: str = ".3f", missing: str = "–") -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return missing
    return format(value, spec)


def _interval(value: float, low: float, high: float, spec: str = ".3f") -> str:
    """`value [low, high]`, or the value alone where there is no interval (below 3 seeds)."""
    if not (math.isfinite(low) and math.isfinite(high)):
        return fmt(value, spec)
    return f"{fmt(value, spec)} [{fmt(low, spec)}, {fmt(high, spec)}]"


def _mean_cell(row: dict) -> str:
    """The mean with its interval from 3 seeds on; below, the range and n: never an interval of 2 seeds."""
    if row["seeds"] >= 3:
        return _interval(row["accuracy_mean"], row["accuracy_ci_low"], row["accuracy_ci_high"])
    if row["seeds"] == 1:
        return f"{fmt(row['accuracy_mean'])} (n=1)"
    return f"{fmt(row['accuracy_mean'])} (range {fmt(row['accuracy_min'])}–{fmt(row['accuracy_max'])}, n={row['seeds']})"


def headline_rows(board: dict) -> tuple[list[str], list[list[str]]]:
    """The leaderboard table: rank, accuracy with its interval, time, memory and the ratios. When
    runs trained on a GPU the peak is the trainer's, with the engine's share in the next column."""
    base = board["baseline"] or "baseline"
    gpu = board.get("on_gpu", False)
    memory = ["peak memory GB (trainer)", "engine GB"] if gpu else ["peak memory GB"]
    header = ["rank", "algorithm", "seeds", "accuracy IQM [95% CI]", "accuracy mean [95% CI]",
              f"P(better than {base})", "accuracy before",
              f"s to {fmt(board['target_accuracy'])} (seeds)", f"x faster than {base}", "wall s",
              f"x faster than {base} (wall)", *memory, f"% less memory than {base}", "peak heap GB"]
    body = []
    for r in board["rows"]:
        memory = [fmt(r["peak_memory_gb_mean"], ".3f")] + ([fmt(r["engine_memory_gb_mean"], ".3f")] if gpu else [])
        body.append([str(r["rank"]), r["algorithm"], str(r["seeds"]),
                     _interval(r["accuracy_iqm"], r["accuracy_iqm_ci_low"], r["accuracy_iqm_ci_high"]),
                     _mean_cell(r), _interval(r["poi_over_baseline"], r["poi_ci_low"], r["poi_ci_high"], ".2f"),
                     fmt(r["accuracy_before_mean"]),
                     f"{fmt(r['seconds_to_target_mean'], '.1f')} ({r['seeds_reaching_target']}/{r['seeds']})",
                     fmt(r["times_faster_to_target"], ".2f"), fmt(r["wall_s_mean"], ".1f"),
                     fmt(r["times_faster_wall"], ".2f"), *memory,
                     fmt(r["percent_less_memory"], "+.1f"), fmt(r["peak_heap_gb_mean"], ".3f")])
    return header, body


def budget_rows(board: dict) -> tuple[list[str], list[list[str]]]:
    """Accuracy at the matched budget points, and what each algorithm spent."""
    m = board["matched"]
    header = ["algorithm", f"accuracy @ {m['samples']:.4g} samples", f"@ {m['tokens']:.4g} tokens",
              f"@ {m['flops']:.3g} FLOPs", f"@ {m['seconds']:.1f} s", "samples", "tokens", "FLOPs",
              "training s", "KL to ref", "steps"]
    body = []
    for r in board["rows"]:
        body.append([r["algorithm"], *(fmt(r[f"accuracy_at_matched_{a}"]) for a in ("samples", "tokens", "flops", "seconds")),
                     fmt(r["samples_mean"], ".0f"), fmt(r["generated_tokens_mean"], ".0f"), fmt(r["flops_mean"], ".3g"),
                     fmt(r["budget_seconds_mean"], ".1f"), fmt(r["kl_ref_mean"], ".2e"), fmt(r["steps_mean"], ".0f")])
    return header, body


def markdown_table(header: list[str], body: list[list[str]]) -> str:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in row) + " |" for row in body]
    return "\n".join(lines)
