"""benchmarks/bench_snapshots.py's decision rule, calibrated on null data through the same code: the
order-statistic interval for the median ratio covers the true median at least 95 % of the time on
skewed, tied ratios, and at a true ratio on the target the rule says "met" at most ~2 % of the time
(one side of the 96.1 % interval; asserted with room for Monte Carlo error)."""

from __future__ import annotations

import numpy as np
import pytest
from helpers.benchmarks import load_benchmark


@pytest.fixture(scope="module")
def bench():
    return load_benchmark("bench_snapshots")


def _burst_lognormal(rng, n: int) -> np.ndarray:
    return rng.lognormal(0.0, 0.02, n) * np.where(rng.random(n) < 0.1, 1.15, 1.0)


TRUE_MEDIAN = float(np.median(_burst_lognormal(np.random.default_rng(12345), 400_000)))


def _null_ratios(rng, n: int, median: float) -> np.ndarray:
    """Ratios as a block design sees them: skewed (a lognormal with occasional 15 % bursts),
    rounded to 3 decimals (ties), scaled so that their median is `median`."""
    return np.round(_burst_lognormal(rng, n) / TRUE_MEDIAN * median, 3)


@pytest.mark.parametrize("n", [5, 8, 12, 20])
def test_the_median_interval_covers_the_true_median_at_least_95_percent(bench, n):
    rng = np.random.default_rng(n)
    covered = []
    for _ in range(2000):
        _, lo, hi = bench.median_ci(list(_null_ratios(rng, n, 1.0)))
        covered.append(lo <= 1.0 <= hi)
    assert (
        np.mean(covered) >= 0.94
    )  # exact order-statistic coverage >= 95 % (n = 12: 96.1 %); MC error ~0.5 %
    if n <= 5:  # too few blocks for a 95 % interval: it is the whole line, and nothing is decided
        assert bench.median_ci([1.0] * n)[1:] == (float("-inf"), float("inf"))


def test_at_a_true_ratio_on_the_target_the_rule_says_met_rarely_and_never_without_the_null(bench):
    rng = np.random.default_rng(0)
    verdicts = [bench.decide(list(_null_ratios(rng, 12, 1.03)), 1.03, True) for _ in range(2000)]
    assert np.mean([v == "met" for v in verdicts]) <= 0.035  # one side of the 96.1 % interval: 1.9 %
    assert np.mean([v == "NOT met" for v in verdicts]) <= 0.035
    clear = [0.99, 1.0, 1.01, 1.0, 0.995, 1.005, 1.0, 1.01, 0.99, 1.0, 1.0, 1.002]
    assert bench.decide(clear, 1.03, True) == "met"
    assert bench.decide([r + 0.1 for r in clear], 1.03, True) == "NOT met"
    assert bench.decide(clear, 1.03, False).startswith("UNDECIDED")
