"""Statistics over seeds as Agarwal et al. recommend ("Deep RL at the Edge of the Statistical
Precipice", NeurIPS 2021): IQM and mean with stratified-bootstrap intervals, the probability of
improvement over a baseline (rliable's own functions), ranks with ties, ratios against a baseline;
and the interval of a ratio of medians over paired benchmark runs.

Below :data:`MIN_SEEDS_FOR_INTERVAL` seeds no interval is computed (nan): the report shows the
range and n instead (two seeds' bootstrap "interval" is only their range).

Numpy and `rliable.metrics`; every function takes plain lists of floats (one per seed; per run,
lists of a run's values) and is deterministic.
"""

from __future__ import annotations

import math

import numpy as np

BOOTSTRAP_RESAMPLES = 10_000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
MIN_SEEDS_FOR_INTERVAL = 3


def finite(values) -> list[float]:
    return [float(v) for v in values if v is not None and math.isfinite(float(v))]


def mean(values) -> float:
    values = finite(values)
    return float(np.mean(values)) if values else math.nan


def iqm(values) -> float:
    """Interquartile mean: the mean of the middle 50 % of the seeds (rliable's `aggregate_iqm`,
    scipy's 25 % trimmed mean; with fewer than 4 seeds nothing is trimmed)."""
    from rliable import metrics

    values = finite(values)
    return float(metrics.aggregate_iqm(np.asarray(values)[:, None])) if values else math.nan


def probability_of_improvement(values, baseline_values) -> float:
    """P(X > Y): the chance that a run of this algorithm beats a run of the baseline, ties counting
    half (rliable's `probability_of_improvement`, the Mann-Whitney U statistic over n_x n_y pairs)."""
    from rliable import metrics

    x, y = finite(values), finite(baseline_values)
    if not x or not y:
        return math.nan
    return float(metrics.probability_of_improvement(np.asarray(x)[:, None], np.asarray(y)[:, None]))


def bootstrap_ci(values, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
                 confidence: float = CONFIDENCE, statistic=None) -> tuple[float, float]:
    """Stratified percentile bootstrap interval of `statistic` (default the mean) over seeds.

    One task, so rliable's stratified bootstrap (runs resampled within each task) resamples the n
    seeds with replacement `resamples` times (``numpy.random.default_rng(seed)``, ``integers(0, n,
    size=(resamples, n))``), takes each resample's statistic and returns the (1 - confidence) / 2
    and (1 + confidence) / 2 percentiles (numpy's linear interpolation). A fresh generator per call:
    the interval of a quantity never depends on what else was computed. Fewer than
    :data:`MIN_SEEDS_FOR_INTERVAL` seeds give (nan, nan).
    """
    values = np.asarray(finite(values), dtype=np.float64)
    if values.size < MIN_SEEDS_FOR_INTERVAL:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    index = rng.integers(0, values.size, size=(resamples, values.size))
    samples = values[index]
    if statistic is None:
        estimates = samples.mean(axis=1)
    else:
        estimates = np.apply_along_axis(statistic, 1, samples)
    return percentile_interval(estimates, confidence)


def iqm_ci(values, resamples: int = BOOTSTRAP_RESAMPLES, seed: int = BOOTSTRAP_SEED,
           confidence: float = CONFIDENCE) -> tuple[float, float]:
    """:func:`bootstrap_ci` of the IQM (scipy's trimmed mean over each resample, vectorised)."""
    from scipy.stats import trim_mean

    values = np.asarray(finite(values), dtype=np.float64)
    if values.size < MIN_SEEDS_FOR_INTERVAL:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    index = rng.integers(0, values.size, size=(resamples, values.size))
    return percentile_interval(trim_mean(values[index], 0.25, axis=1), confidence)


def probability_of_improvement_ci(values, baseline_values, resamples: int = 2_000, seed: int = BOOTSTRAP_SEED,
                                  confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of :func:`probability_of_improvement`, the two algorithms' seeds
    resampled independently (rliable's `StratifiedIndependentBootstrap`); (nan, nan) below
    :data:`MIN_SEEDS_FOR_INTERVAL` seeds on either side."""
    x, y = np.asarray(finite(values)), np.asarray(finite(baseline_values))
    if min(x.size, y.size) < MIN_SEEDS_FOR_INTERVAL:
        return math.nan, math.nan
    rng = np.random.default_rng(seed)
    xs = x[rng.integers(0, x.size, size=(resamples, x.size))]
    ys = y[rng.integers(0, y.size, size=(resamples, y.size))]
    # P(X > Y) + P(X = Y) / 2 over all pairs: the Mann-Whitney U statistic / (n_x n_y), per resample.
    wins = (xs[:, :, None] > ys[:, None, :]).mean(axis=(1, 2)) + 0.5 * (xs[:, :, None] == ys[:, None, :]).mean(axis=(1, 2))
    return percentile_interval(wins, confidence)


def percentile_interval(estimates, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """The (1 - confidence) / 2 and (1 + confidence) / 2 percentiles of bootstrap estimates."""
    tail = (1.0 - confidence) / 2.0 * 100.0
    low, high = np.percentile(np.asarray(estimates, dtype=np.float64), [tail, 100.0 - tail])
    return float(low), float(high)


def bootstrap_ratio_of_medians(numerator, denominator, resamples: int = BOOTSTRAP_RESAMPLES,
                               seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE) -> tuple[float, float]:
    """Percentile bootstrap interval of median(numerator) / median(denominator) for paired runs.

    Both are [runs, values per run] (run i of each measured in the same period, e.g. a benchmark's
    alternated rounds). Each resample draws the runs with replacement, the same ones for both
    sides, then each drawn run's values with replacement, side by side: the interval holds the
    spread between runs (a machine's slow and fast periods), not only the spread within one.
    """
    for name, runs_ in (("numerator", numerator), ("denominator", denominator)):
        lengths = {len(run) if hasattr(run, "__len__") else None for run in runs_}
        if len(lengths) > 1:
            raise ValueError(f"{name}: every run needs as many values, got lengths {sorted(map(str, lengths))}")
    num, den = np.asarray(numerator, dtype=np.float64), np.asarray(denominator, dtype=np.float64)
    if num.ndim != 2 or den.ndim != 2 or num.shape[0] != den.shape[0] or not num.size or not den.size:
        raise ValueError(f"expected [runs, values] arrays with the same number of runs, got shapes {num.shape} and {den.shape}")
    rng = np.random.default_rng(seed)
    runs = rng.integers(0, num.shape[0], size=(resamples, num.shape[0], 1))

    def medians(values: np.ndarray) -> np.ndarray:
        picks = rng.integers(0, values.shape[1], size=(resamples, values.shape[0], values.shape[1]))
        return np.median(values[runs, picks].reshape(resamples, -1), axis=1)

    return percentile_interval(medians(num) / medians(den), confidence)


def ranks_with_ties(intervals: dict[str, tuple[float, float]], means: dict[str, float],
                    higher_is_better: bool = True) -> dict[str, int]:
    """Rank = 1 + the number of entries that are better with non-overlapping intervals.

    Entries whose intervals overlap share a rank (as the LMSYS arena ranks models): an algorithm
    is only ranked below another when the other's whole interval lies above its own. Entries
    without a finite mean rank last.
    """
    ranks = {}
    names = list(intervals)
    for name in names:
        low, high = intervals[name]
        if not math.isfinite(means.get(name, math.nan)):
            ranks[name] = len(names)
            continue
        better = 0
        for other in names:
            if other == name or not math.isfinite(means.get(other, math.nan)):
                continue
            o_low, o_high = intervals[other]
            better += (o_low > high) if higher_is_better else (o_high < low)
        ranks[name] = 1 + better
    return ranks


def times_faster(baseline_seconds: float, seconds: float) -> float:
    """"x times faster" as the A*-PO paper reports it: the baseline's time over this one's."""
    if not (math.isfinite(baseline_seconds) and math.isfinite(seconds)) or seconds <= 0:
        return math.nan
    return baseline_seconds / seconds


def percent_less_memory(baseline_gb: float, gb: float) -> float:
    """"% less memory" than the baseline: 100 * (baseline - this) / baseline; negative is more."""
    if not (math.isfinite(baseline_gb) and math.isfinite(gb)) or baseline_gb <= 0:
        return math.nan
    return 100.0 * (baseline_gb - gb) / baseline_gb


def interpolate(xs: list[float], ys: list[float], x: float) -> float:
    """y at x on the piecewise-linear curve through (xs, ys); ys[0] for 0 <= x < xs[0], nan past xs[-1].

    Before its first evaluation a run's policy is still the starting one (an offline stage spends
    budget without changing it), so its accuracy there is the first evaluation's.
    """
    if not xs or not math.isfinite(x) or x < 0 or x > xs[-1]:
        return math.nan
    return float(np.interp(x, xs, ys))


def first_crossing(xs: list[float], ys: list[float], target: float) -> float:
    """The smallest x where the piecewise-linear curve through (xs, ys) reaches `target`.

    If the first point already reaches it, that point's x; nan if the curve never does.
    """
    for i, (x, y) in enumerate(zip(xs, ys)):
        if y >= target:
            if i == 0:
                return float(x)
            x0, y0 = xs[i - 1], ys[i - 1]
            return float(x0 + (target - y0) * (x - x0) / (y - y0))
    return math.nan
