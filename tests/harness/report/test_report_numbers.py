"""The leaderboard's numbers against the runs they come from (synthetic runs with known numbers)."""

from __future__ import annotations

import csv
import json
import math
import subprocess
import sys

import numpy as np
import pytest
from synthetic_runs import EVAL_STEPS, EXPERIMENT, SPEC, accuracy_curve, budget_at, synthetic_records

from harness.cli import main
from harness.report import leaderboard
from harness.report.stats import ranks_with_ties


def read_csv(path) -> dict[str, dict]:
    with open(path) as f:
        return {row["algorithm"]: row for row in csv.DictReader(f)}


def number(text: str) -> float:
    return float(text) if text != "" else math.nan


def bootstrap_interval(values: list[float]) -> tuple[float, float]:
    """The documented procedure, written out again: 10,000 resamples of the seeds, default_rng(0)."""
    values = np.array(values)
    draws = np.random.default_rng(0).integers(0, len(values), size=(10_000, len(values)))
    resampled = values[draws].mean(axis=1)
    return float(np.percentile(resampled, 2.5)), float(np.percentile(resampled, 97.5))


def seconds_to(algorithm: str, final: float, target: float) -> float:
    """Hand-computed crossing of the three-point curve (start, midpoint, final)."""
    accuracy = accuracy_curve(final)
    seconds = [budget_at(algorithm, s)["budget/seconds"] for s in EVAL_STEPS]
    for i in range(1, 3):
        if accuracy[i] >= target > accuracy[i - 1]:
            return seconds[i - 1] + (target - accuracy[i - 1]) / (accuracy[i] - accuracy[i - 1]) * (seconds[i] - seconds[i - 1])
    return math.inf if accuracy[-1] < target else seconds[0]


def test_csv_numbers_match_the_runs(synthetic_report):
    rows = read_csv(synthetic_report["csv"])
    assert set(rows) == set(SPEC)
    for algorithm, spec in SPEC.items():
        row = rows[algorithm]
        assert int(row["seeds"]) == len(spec["final"])
        assert number(row["accuracy_mean"]) == pytest.approx(np.mean(spec["final"]), abs=1e-12)
        assert (number(row["accuracy_min"]), number(row["accuracy_max"])) == (min(spec["final"]), max(spec["final"]))
        if len(spec["final"]) >= 3:
            low, high = bootstrap_interval(spec["final"])
            assert number(row["accuracy_ci_low"]) == pytest.approx(low, abs=1e-12)
            assert number(row["accuracy_ci_high"]) == pytest.approx(high, abs=1e-12)
            assert min(spec["final"]) <= low < np.mean(spec["final"]) < high <= max(spec["final"])
        assert number(row["peak_memory_gb_mean"]) == pytest.approx(np.mean(spec["peak"]), abs=1e-12)
        assert number(row["peak_heap_gb_mean"]) == pytest.approx(np.mean(spec["peak"]) / 3, abs=1e-12)
        # Wall time includes the offline stage, which runs before the training call.
        assert number(row["wall_s_mean"]) == pytest.approx(np.mean(spec["wall"]) + spec["offline_s"], abs=1e-12)
        final_budget = budget_at(algorithm, EVAL_STEPS[-1])
        assert number(row["samples_mean"]) == final_budget["budget/samples"]
        assert number(row["flops_mean"]) == pytest.approx(final_budget["budget/flops"])
    # Two seeds: a bootstrap "interval" would only be their range; none is given, the range is.
    assert all(math.isnan(number(rows["ppo"][c])) for c in ("accuracy_ci_low", "accuracy_ci_high", "accuracy_iqm_ci_low",
                                                            "poi_ci_low", "wall_s_ci_low", "peak_memory_gb_ci_high"))

    # Time to 0.33 on the training-seconds axis; PPO never gets there.
    expected = {a: [seconds_to(a, f, 0.33) for f in SPEC[a]["final"]] for a in ("grpo", "a_star_po")}
    for algorithm, times in expected.items():
        assert number(rows[algorithm]["seconds_to_target_mean"]) == pytest.approx(np.mean(times), rel=1e-12)
        assert rows[algorithm]["seeds_reaching_target"] == str(len(times))
    assert rows["ppo"]["seeds_reaching_target"] == "0" and rows["ppo"]["times_faster_to_target"] == ""

    # Ratios against GRPO in the A*-PO paper's way.
    speedup = np.mean(expected["grpo"]) / np.mean(expected["a_star_po"])
    assert number(rows["a_star_po"]["times_faster_to_target"]) == pytest.approx(speedup, rel=1e-12)
    assert speedup > 1.4  # A*-PO's synthetic runs spend half the seconds per step, plus 8 s offline
    assert number(rows["a_star_po"]["times_faster_wall"]) == pytest.approx(125.0 / (63.0 + 8.0))
    less = 100 * (np.mean(SPEC["grpo"]["peak"]) - np.mean(SPEC["a_star_po"]["peak"])) / np.mean(SPEC["grpo"]["peak"])
    assert number(rows["a_star_po"]["percent_less_memory"]) == pytest.approx(less, rel=1e-12)
    assert number(rows["ppo"]["percent_less_memory"]) == pytest.approx(100 * (1.05 - 1.55) / 1.05, rel=1e-12)
    assert number(rows["grpo"]["times_faster_to_target"]) == 1.0 and number(rows["grpo"]["percent_less_memory"]) == 0.0

    # A*-PO and GRPO overlap (shared rank 1); PPO lies below both.
    assert [rows[a]["rank"] for a in ("a_star_po", "grpo", "ppo")] == ["1", "1", "3"]

    # Matched budget: the smallest final budget is GRPO's/PPO's 320 samples; A*-PO, which spent 256
    # samples offline, is 64 samples into its 160-sample step from its first to its second evaluation.
    assert number(rows["grpo"]["accuracy_at_matched_samples"]) == pytest.approx(np.mean(SPEC["grpo"]["final"]))
    a_star = [accuracy_curve(f) for f in SPEC["a_star_po"]["final"]]
    expected_a_star = np.mean([c[0] + (c[1] - c[0]) * 64 / 160 for c in a_star])
    assert number(rows["a_star_po"]["accuracy_at_matched_samples"]) == pytest.approx(expected_a_star, rel=1e-12)


def test_iqm_and_probability_of_improvement_are_rliables():
    """IQM and P(X > Y) equal rliable's functions on the seeds' final accuracies; the IQM of 5 seeds
    is the mean of the middle 3 (hand-computed); P(X > Y) counts ties half."""
    from rliable import metrics

    from harness.report import stats

    five = [0.30, 0.90, 0.34, 0.10, 0.32]
    assert stats.iqm(five) == pytest.approx((0.30 + 0.32 + 0.34) / 3, abs=1e-12)
    assert stats.iqm(five) == pytest.approx(metrics.aggregate_iqm(np.array(five)[:, None]), abs=1e-15)
    x, y = [0.41, 0.45, 0.43, 0.40], [0.40, 0.44, 0.42]
    # Pairs x > y: 0.41 > 0.40; 0.45 > all 3; 0.43 > 0.40, 0.42; 0.40 = 0.40 (half): 6.5 of 12.
    assert stats.probability_of_improvement(x, y) == pytest.approx(6.5 / 12, abs=1e-12)
    assert stats.probability_of_improvement(x, y) == pytest.approx(
        metrics.probability_of_improvement(np.array(x)[:, None], np.array(y)[:, None]), abs=1e-12)
    low, high = stats.probability_of_improvement_ci(x, y)
    assert 0.0 <= low < 6.5 / 12 < high <= 1.0
    low, high = stats.iqm_ci(five)
    assert 0.10 <= low < stats.iqm(five) < high <= 0.90
    assert all(math.isnan(v) for v in stats.iqm_ci(five[:2]) + stats.bootstrap_ci(five[:2])
               + stats.probability_of_improvement_ci(x, y[:2]))


def test_default_target_is_what_every_baseline_seed_reached():
    board = leaderboard(synthetic_records(), baseline="grpo")
    # GRPO's seeds end at 0.40, 0.44, 0.42 (their highest points): the target is 0.40.
    assert board["target_accuracy"] == 0.40 and board["target_is_default"]
    grpo = next(r for r in board["rows"] if r["algorithm"] == "grpo")
    assert grpo["seeds_reaching_target"] == 3
    grpo_times = [seconds_to("grpo", f, 0.40) for f in SPEC["grpo"]["final"]]
    assert grpo["seconds_to_target_mean"] == pytest.approx(np.mean(grpo_times))
    # Without a baseline: the highest accuracy every run reached is PPO's start (it only got worse),
    # no better than where the runs started: no target, so no time to it and no speed-up.
    board = leaderboard(synthetic_records(), baseline=None)
    assert math.isnan(board["target_accuracy"])
    assert all(math.isnan(r["seconds_to_target_mean"]) and r["seeds_reaching_target"] == 0 for r in board["rows"])


def test_ranks_with_ties_where_intervals_overlap():
    intervals = {"a": (0.50, 0.60), "b": (0.55, 0.65), "c": (0.30, 0.40), "d": (0.38, 0.52), "e": (0.0, 0.1)}
    means = {k: sum(v) / 2 for k, v in intervals.items()}
    # b: nobody above; a overlaps b; d overlaps a but lies below b's 0.55; c below a and b; e below all.
    assert ranks_with_ties(intervals, means) == {"a": 1, "b": 1, "d": 2, "c": 3, "e": 5}


def test_markdown_and_html_hold_the_tables_and_figures(synthetic_report):
    paths = synthetic_report
    md = paths["md"].read_text()
    assert "| 1 | a_star_po | 3 | 0.430 [0.410, 0.450] | 0.430 [0.410, 0.450] | 0.67 [0.11, 1.00] | 0.250 |" in md
    assert "| 3 | ppo | 2 | 0.210 | 0.210 (range 0.200–0.220, n=2) | 0.00 | 0.250 |" in md
    assert "rlvr-bench compare --experiment synth --seeds 0 1 2" in md
    assert "0123456789abcdef0123456789abcdef01234567" in md and "a" * 64 in md
    html = paths["html"].read_text()
    assert html.count("<table") == 2 and html.count("data:image/png;base64,") == 4  # value-MSE logged too
    assert "http://" not in html and "https://" not in html  # self-contained


def test_report_imports_no_training_code_and_takes_seconds(synthetic_results):
    code = (
        "import sys, time; t = time.perf_counter()\n"
        "from harness.cli import main\n"
        f"assert main(['report', {EXPERIMENT!r}, '--output-dir', {str(synthetic_results)!r}]) == 0\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'algorithms', 'transformers', 'mlflow') if m in sys.modules)\n"
        "print('RESULT', heavy, time.perf_counter() - t)\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    heavy, seconds = out.stdout.split("RESULT", 1)[1].rsplit(" ", 1)
    assert heavy.strip() == "[]", heavy
    assert float(seconds) < 30


def test_cli_errors_name_the_flag_or_folder(synthetic_results, tmp_path, capsys):
    assert main(["report", EXPERIMENT, "--output-dir", str(synthetic_results), "--baseline", "rebel"]) == 2
    assert "--baseline 'rebel'" in capsys.readouterr().err
    assert main(["report", "nothing-here", "--output-dir", str(tmp_path)]) == 2
    assert str(tmp_path / "nothing-here" / "runs") in capsys.readouterr().err
    assert main(["report", EXPERIMENT, "--output-dir", str(synthetic_results), "--target-accuracy", "7"]) == 2
    assert "--target-accuracy" in capsys.readouterr().err
    bad = synthetic_results / EXPERIMENT / "runs" / "grpo-seed0.json"
    record = json.loads(bad.read_text())
    del record["eval_curve"]
    bad.write_text(json.dumps(record))
    assert main(["report", EXPERIMENT, "--output-dir", str(synthetic_results)]) == 2
    err = capsys.readouterr().err
    assert str(bad) in err and "eval_curve" in err
