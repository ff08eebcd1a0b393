"""The decision module (analysis/evidence.py): exact permutation p-values (never 0 for two constant
arms), Gehan ranks equal Mann–Whitney's exact p without censoring, the Hodges–Lehmann interval at its
exact achieved level and within the data's range, three decisions, Holm's hand computation. The
calibration on null data runs through the claims layer: tests/test_calibration.py."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bertviz_landscape.analysis.measures import evidence
from bertviz_landscape.analysis.measures.evidence import (
    CONTRADICTED,
    DESCRIPTIVE,
    SUPPORTED,
    UNRESOLVED,
    Rule,
)

RULE = Rule(alpha=0.05, min_runs=3, confidence=0.95, matched_loss_rtol=0.1, plateau_runs="exclude")


def test_two_constant_arms_that_differ_get_the_smallest_exact_p_never_zero():
    c = evidence.compare([1.0] * 5, [0.0] * 5, RULE)
    assert c.p == pytest.approx(2 / math.comb(10, 5)) and c.p_greater == pytest.approx(1 / 252)
    assert c.p_min == pytest.approx(2 / 252) and c.exact and c.direction == 1
    c3 = evidence.compare([1.0] * 3, [0.0] * 3, RULE)
    assert c3.p == pytest.approx(0.1)  # 3 + 3 runs cannot reach α = 0.05, whatever the data


def test_the_rank_test_is_mann_whitneys_exact_test_without_censoring():
    rng = np.random.default_rng(3)
    for _ in range(20):
        a, b = rng.normal(size=5), rng.normal(size=4)
        c = evidence.compare(a, b, RULE, "rank")
        assert c.p_greater == pytest.approx(
            stats.mannwhitneyu(a, b, alternative="greater", method="exact").pvalue
        )


def test_the_permutation_p_is_the_larger_of_the_exact_and_welchs():
    a, b = [0.81, 0.84, 0.79, 0.86], [0.62, 0.70, 0.58]
    c = evidence.compare(a, b, RULE)
    assert c.p_greater == pytest.approx(1 / 35)  # the observed split is the most extreme of C(7, 3)
    assert c.welch_p == pytest.approx(stats.ttest_ind(a, b, equal_var=False).pvalue)
    assert c.p == pytest.approx(max(2 / 35, c.welch_p))


def test_hodges_lehmann_interval_has_its_exact_level_and_stays_in_range():
    a, b = np.array([0.9, 0.95, 1.0, 0.97, 0.99]), np.array([0.0, 0.02, 0.01, 0.05, 0.03])
    c = evidence.compare(a, b, RULE)
    d = np.subtract.outer(a, b).ravel()
    assert c.difference == pytest.approx(np.median(d)) and d.min() <= c.ci_low <= c.ci_high <= d.max()
    assert c.ci_level >= 0.95 and c.ci_level == pytest.approx(
        1 - 2 * 4 / 252
    )  # k = 3 at 5 + 5: P(U <= 2) = 4/252
    agg = evidence.aggregate([0.99, 1.0, 1.0, 0.98], 0.95)  # an IoU near its top: never above 1
    assert 0.98 <= agg.ci_low <= agg.ci_high <= 1.0


def test_censored_values_are_ranked_and_unorderable_arms_are_detected():
    c = evidence.compare(
        [1.0, 1.0, 0.9], [0.5, 0.6, 0.4], RULE, "permutation", [True, True, False], [False] * 3
    )
    assert c.test == "rank" and c.effect == "Gehan concordance" and c.difference == pytest.approx(1.0)
    assert not evidence.orderable([1.0, 1.0], [1.0, 1.0], [True, True], [True, True])
    assert evidence.orderable([1.0, 0.5], [1.0, 1.0], [True, False], [True, True])  # 0.5 < a bound of 1
    assert evidence.orderable([1.0, 0.5], [0.7, 1.0], [True, False], [False, True])


def test_three_decisions_and_descriptive_below_min_runs():
    c = evidence.compare([1.0, 1.1, 1.2, 1.3, 1.4, 1.5], [0.0, 0.1, 0.05, 0.2, 0.15, 0.12], RULE)
    assert evidence.verdict(c, c.p, +1, RULE) == SUPPORTED
    assert evidence.verdict(c, c.p, -1, RULE) == CONTRADICTED
    assert evidence.verdict(c, 0.2, +1, RULE) == UNRESOLVED
    c2 = evidence.compare([1.0, 1.1], [0.0, 0.1], RULE)
    assert evidence.verdict(c2, 0.0, +1, RULE) == DESCRIPTIVE


def test_holm_matches_the_hand_computation():
    # sorted: 0.01 (×4 = 0.04), 0.02 (×3 = 0.06), 0.03 (×2 = 0.06), 0.04 (×1 = 0.04 -> running max 0.06)
    assert evidence.holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    out = evidence.holm([0.5, math.nan, 0.2])
    assert out[0] == pytest.approx(0.5) and math.isnan(out[1]) and out[2] == pytest.approx(0.4)
    assert evidence.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])


def test_the_rule_rejects_impossible_thresholds():
    with pytest.raises(ValueError, match="min_runs"):
        Rule(alpha=0.05, min_runs=1, confidence=0.95, matched_loss_rtol=0.1, plateau_runs="exclude")
    with pytest.raises(ValueError, match="alpha"):
        Rule(alpha=1.5, min_runs=3, confidence=0.95, matched_loss_rtol=0.1, plateau_runs="exclude")
