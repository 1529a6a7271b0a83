"""The leaderboard's memory on a GPU: the trainer's peak (max allocated, max over the run) as the
peak-memory column, the engine's share beside it; CPU runs keep their max RSS and no engine column.

The GPU runs are real CPU records of the reference comparison with the metrics that
`harness.callbacks.TelemetryCallback` adds on CUDA (`GpuMemory.metrics`) written into each
training step of their history, and the last step's into `final_metrics`, as `recorder.latest`
keeps them."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest

from harness.records import run_path, write_json_atomic
from harness.report import write_report

RUNS = Path(__file__).resolve().parents[3] / "results" / "reference" / "default" / "runs"
PICKED = [("grpo", 0), ("grpo", 1), ("rloo", 0), ("rloo", 1)]
# Per run: the step whose peak is the run's largest, that peak, and the engine's share (None: HF engine).
GPU = {("grpo", 0): (5, 9.25, 21.5), ("grpo", 1): (3, 9.75, 22.5),
       ("rloo", 0): (2, 6.5, None), ("rloo", 1): (5, 7.0, None)}
RESUMED_AT = 6  # grpo seed 1 resumes before this step: GpuMemory's running peak starts again at 0


def cpu_record(algorithm: str, seed: int) -> dict:
    return json.loads((RUNS / f"{algorithm}-seed{seed}.json").read_text())


def on_gpu(record: dict) -> dict:
    """The record as a CUDA run would have written it: per training step the keys of
    `GpuMemory.metrics` (perf/peak_memory_gb the running max of the steps' max allocated)."""
    record = copy.deepcopy(record)
    spike_step, spike, engine = GPU[(record["algorithm"], record["seed"])]
    running = 0.0
    steps = [entry for entry in record["history"] if "timing_s/step" in entry]
    assert len(steps) >= 8
    for entry in steps:
        step = entry["step"]
        if (record["algorithm"], record["seed"]) == ("grpo", 1) and step == RESUMED_AT:
            running = 0.0
        allocated = spike if step == spike_step else spike - 2.0 + 0.01 * step
        running = max(running, allocated)
        entry.update({"perf/max_memory_allocated_gb": allocated, "perf/max_memory_reserved_gb": allocated + 1.5,
                      "perf/peak_memory_gb": running, "perf/device_used_gb": allocated + 3.0 + (engine or 0.0)})
        if engine is not None:
            entry["perf/engine_memory_gb"] = engine - 0.5 + 0.05 * (step % 3) if step != spike_step else engine
    last = {k: v for k, v in steps[-1].items() if k != "step"}
    record["final_metrics"].update(last)
    record["environment"]["cuda"] = "12.8"
    return record


def write(records: list[dict], out: Path, experiment: str) -> dict[str, Path]:
    for record in records:
        record = {**record, "experiment": experiment}
        write_json_atomic(run_path(str(out), experiment, record["algorithm"], record["seed"]), record)
    return write_report(experiment, out, baseline="grpo")


def headline(md: str) -> tuple[list[str], dict[str, list[str]]]:
    table = md.split("## Leaderboard")[1].split("## Matched budget")[0]
    lines = [line for line in table.splitlines() if line.startswith("| ")]
    cells = [[cell.strip() for cell in line.split("|")[1:-1]] for line in lines]
    return cells[0], {row[1]: row for row in cells[1:]}


def csv_rows(path: Path) -> dict[str, dict]:
    with open(path) as f:
        return {row["algorithm"]: row for row in csv.DictReader(f)}


def test_gpu_runs_show_the_trainers_peak_with_the_engines_share_beside(tmp_path):
    records = [on_gpu(cpu_record(a, s)) for a, s in PICKED]
    # The resumed run's last running peak lost the spike before the resume: the history still has it.
    resumed = next(r for r in records if (r["algorithm"], r["seed"]) == ("grpo", 1))
    assert GPU[("grpo", 1)][0] < RESUMED_AT and resumed["final_metrics"]["perf/peak_memory_gb"] < 9.0
    paths = write(records, tmp_path / "results", "gpu")
    header, rows = headline(paths["md"].read_text())
    peak, engine = header.index("peak memory GB (trainer)"), header.index("engine GB")
    assert engine == peak + 1 and header[engine + 1] == "% less memory than grpo"
    trainer = {a: sum(GPU[(a, s)][1] for s in (0, 1)) / 2 for a in ("grpo", "rloo")}
    assert trainer == {"grpo": 9.5, "rloo": 6.75}
    assert rows["grpo"][peak] == "9.500" and rows["rloo"][peak] == "6.750"
    assert rows["grpo"][engine] == "22.000" and rows["rloo"][engine] == "–"  # HF engine: no share of its own
    assert rows["rloo"][engine + 1] == f"{100 * (9.5 - 6.75) / 9.5:+.1f}"
    table = csv_rows(paths["csv"])
    for algorithm in ("grpo", "rloo"):
        row = table[algorithm]
        assert float(row["peak_memory_gb_mean"]) == pytest.approx(trainer[algorithm], abs=1e-12)
        assert row["peak_memory_source"] == "gpu_max_allocated"
    assert float(table["grpo"]["engine_memory_gb_mean"]) == pytest.approx(22.0, abs=1e-12)
    assert table["rloo"]["engine_memory_gb_mean"] == "" and table["rloo"]["engine_memory_gb_ci_low"] == ""
    assert float(table["rloo"]["percent_less_memory"]) == pytest.approx(100 * (9.5 - 6.75) / 9.5, rel=1e-12)
    md = paths["md"].read_text()
    assert "On a GPU: peak memory (trainer) is the largest perf/max_memory_allocated_gb" in md
    assert "engine GB" in paths["html"].read_text()


def test_cpu_runs_keep_the_max_rss_and_have_no_engine_column(tmp_path):
    records = [cpu_record(a, s) for a, s in PICKED]
    paths = write(records, tmp_path / "results", "cpu")
    header, rows = headline(paths["md"].read_text())
    assert "peak memory GB" in header and "engine GB" not in header and "peak memory GB (trainer)" not in header
    peak = header.index("peak memory GB")
    table = csv_rows(paths["csv"])
    for algorithm in ("grpo", "rloo"):
        rss = [r["final_metrics"]["perf/peak_memory_gb"] for r in records if r["algorithm"] == algorithm]
        assert rss == [r["final_metrics"]["perf/max_rss_gb"] for r in records if r["algorithm"] == algorithm]
        assert float(table[algorithm]["peak_memory_gb_mean"]) == pytest.approx(sum(rss) / 2, abs=1e-12)
        assert rows[algorithm][peak] == f"{sum(rss) / 2:.3f}"
        assert table[algorithm]["peak_memory_source"] == "cpu_max_rss"
        assert table[algorithm]["engine_memory_gb_mean"] == ""
    assert "On a GPU:" not in paths["md"].read_text()
