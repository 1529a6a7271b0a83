"""The interval of a ratio of medians over paired runs, and the TRL benchmark's verdict from it."""

import importlib.util
from pathlib import Path

import pytest

from harness.report.stats import bootstrap_ratio_of_medians

ROOT = Path(__file__).resolve().parents[3]


def trl_benchmark():
    spec = importlib.util.spec_from_file_location("trl_grpo_step", ROOT / "benchmarks" / "trl_grpo_step.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_steady_runs_give_the_ratio_itself():
    assert bootstrap_ratio_of_medians([[0.5] * 6, [0.5] * 6], [[1.25] * 6, [1.25] * 6]) == pytest.approx((0.4, 0.4))


def test_the_interval_holds_the_spread_between_runs():
    # Round 1 ran in a fast period of the machine, round 2 in a slow one; TRL's runs were steady.
    ours, trl = [[1.0, 1.01, 0.99, 1.0], [1.4, 1.41, 1.39, 1.4]], [[2.0] * 4, [2.0] * 4]
    low, high = bootstrap_ratio_of_medians(ours, trl)
    assert low == pytest.approx(0.5, abs=0.01) and high == pytest.approx(0.7, abs=0.01)
    assert (low, high) == bootstrap_ratio_of_medians(ours, trl)  # seeded: the same interval every time
    # The same steps as one run: only the spread within it, which resampling its steps keeps narrower.
    pooled_low, pooled_high = bootstrap_ratio_of_medians([ours[0] + ours[1]], [trl[0] + trl[1]])
    assert pooled_high - pooled_low < high - low


def test_runs_must_pair():
    with pytest.raises(ValueError, match="same number of runs"):
        bootstrap_ratio_of_medians([[1.0, 1.0]], [[2.0], [2.0]])
    with pytest.raises(ValueError, match=r"\[runs, values\]"):
        bootstrap_ratio_of_medians([1.0, 1.0], [2.0, 2.0])
    with pytest.raises(ValueError, match="numerator: every run needs as many values"):
        bootstrap_ratio_of_medians([[1.0, 1.0], [1.0]], [[2.0], [2.0]])


def test_the_benchmark_calls_the_target_met_only_when_the_whole_interval_is_below_it():
    bench = trl_benchmark()
    trl = [[2.0, 2.1, 1.9, 2.0]] * 3
    assert bench.ratio_verdict([[0.9, 0.92, 0.88, 0.9]] * 3, trl).endswith("target <= 0.50: met")
    assert bench.ratio_verdict([[1.1, 1.12, 1.08, 1.1]] * 3, trl).endswith("target <= 0.50: not met")
    undecided = bench.ratio_verdict([[0.9, 0.92, 0.88, 0.9], [1.1, 1.12, 1.08, 1.1], [1.0, 1.0, 1.0, 1.0]], trl)
    assert "undecided" in undecided and "3 rounds" in undecided
