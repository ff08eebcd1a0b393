"""The decision module (analysis/evidence.py) on synthetic runs: an A/A comparison keeps the
nominal error rate, a planted effect is found, n < 3 per arm is descriptive only, Holm's adjusted p
is the hand computation, Welch's numbers are scipy's."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from bertviz_landscape.analysis import evidence
from bertviz_landscape.analysis.evidence import CONTRADICTED, DESCRIPTIVE, SUPPORTED, UNRESOLVED, Rule

RULE = Rule(alpha=0.05, min_runs=3, confidence=0.95, matched_loss_rtol=0.1, plateau_runs="exclude")


def _decide(a, b, better=+1, rule=RULE):
    c = evidence.welch(a, b, rule.confidence)
    return evidence.verdict(c, c.p, better, rule), c


def test_a_over_a_declares_at_no_more_than_the_nominal_rate():
    """Both arms from one distribution (normal, then skewed), 4000 seeded repetitions at n = 3 and 5:
    supported-or-contradicted at most α plus 3 binomial standard errors."""
    rng = np.random.default_rng(1234)
    reps = 4000
    tol = 3 * math.sqrt(RULE.alpha * (1 - RULE.alpha) / reps)
    for n in (3, 5):
        for draw in (lambda size: rng.normal(0.7, 0.05, size), lambda size: rng.lognormal(0.0, 0.5, size)):
            decided = 0
            for _ in range(reps):
                v, _ = _decide(draw(n), draw(n))
                decided += v in (SUPPORTED, CONTRADICTED)
            assert decided / reps <= RULE.alpha + tol, (n, decided / reps)


def test_holm_keeps_the_family_wise_rate_over_five_aa_claims():
    rng = np.random.default_rng(7)
    reps, any_decided = 1500, 0
    for _ in range(reps):
        ps = [evidence.welch(rng.normal(size=4), rng.normal(size=4), 0.95).p for _ in range(5)]
        any_decided += any(p < RULE.alpha for p in evidence.holm(ps))
    assert any_decided / reps <= RULE.alpha + 3 * math.sqrt(0.05 * 0.95 / reps)


def test_a_planted_effect_is_detected_with_its_direction_and_interval():
    """A difference of 3 standard deviations at n = 5 per arm (Welch's power ≈ 0.98): found in ≥ 90%
    of 1000 seeded repetitions, 'supported' when the claim says a is higher and 'contradicted' when it
    says lower, and the 95% interval covers the planted difference about 95% of the time."""
    rng = np.random.default_rng(99)
    reps, delta, sd = 1000, 0.3, 0.1
    supported = contradicted = covered = 0
    for _ in range(reps):
        a, b = rng.normal(delta, sd, 5), rng.normal(0.0, sd, 5)
        v, c = _decide(a, b, better=+1)
        supported += v == SUPPORTED
        contradicted += evidence.verdict(c, c.p, -1, RULE) == CONTRADICTED
        covered += c.ci_low <= delta <= c.ci_high
    assert supported / reps >= 0.9 and contradicted / reps >= 0.9
    assert abs(covered / reps - 0.95) <= 3 * math.sqrt(0.95 * 0.05 / reps)


def test_fewer_than_three_runs_per_arm_is_descriptive_only():
    for a, b in (([1.0], [0.0]), ([1.0, 1.1], [0.0, 0.1, 0.05]), ([5.0, 5.1, 5.2], [0.0, 0.1])):
        v, c = _decide(a, b)
        assert v == DESCRIPTIVE, (a, b)
    v, c = _decide([1.0, 1.1, 1.2], [0.0, 0.1, 0.05])
    assert v == SUPPORTED and c.p < 0.01
    v, _ = _decide([1.0, 1.1, 1.2], [1.05, 1.0, 1.15])
    assert v == UNRESOLVED


def test_holm_matches_the_hand_computation():
    # sorted: 0.01 (×4 = 0.04), 0.02 (×3 = 0.06), 0.03 (×2 = 0.06), 0.04 (×1 = 0.04 -> running max 0.06)
    assert evidence.holm([0.03, 0.01, 0.04, 0.02]) == pytest.approx([0.06, 0.04, 0.06, 0.06])
    # NaN is not part of the family; capped at 1
    out = evidence.holm([0.5, math.nan, 0.2])
    assert out[0] == pytest.approx(0.5) and math.isnan(out[1]) and out[2] == pytest.approx(0.4)
    assert evidence.holm([0.6, 0.7]) == pytest.approx([1.0, 1.0])


def test_welch_numbers_are_scipys_and_hedges_g_is_the_textbook_one():
    a, b = [0.81, 0.84, 0.79, 0.86], [0.62, 0.70, 0.58]
    c = evidence.welch(a, b, 0.95)
    ref = stats.ttest_ind(a, b, equal_var=False)
    assert c.t == pytest.approx(ref.statistic) and c.p == pytest.approx(ref.pvalue)
    va, vb = np.var(a, ddof=1) / 4, np.var(b, ddof=1) / 3
    df = (va + vb) ** 2 / (va**2 / 3 + vb**2 / 2)
    half = stats.t.ppf(0.975, df) * math.sqrt(va + vb)
    assert (c.ci_low, c.ci_high) == pytest.approx((c.difference - half, c.difference + half))
    sp = math.sqrt((3 * np.var(a, ddof=1) + 2 * np.var(b, ddof=1)) / 5)
    assert c.hedges_g == pytest.approx((1 - 3 / (4 * 7 - 9)) * (np.mean(a) - np.mean(b)) / sp)
    assert c.g_low < c.hedges_g < c.g_high
    # the exact permutation p: the observed split is the most extreme of C(7, 3) = 35 (and its mirror)
    assert c.permutation_p == pytest.approx(1 / 35)
    agg = evidence.aggregate(a, 0.95)
    h = stats.t.ppf(0.975, 3) * np.std(a, ddof=1) / 2
    assert (agg.mean, agg.n, agg.ci_low) == pytest.approx((np.mean(a), 4, np.mean(a) - h))


def test_the_rule_rejects_impossible_thresholds():
    with pytest.raises(ValueError, match="min_runs"):
        Rule(alpha=0.05, min_runs=1, confidence=0.95, matched_loss_rtol=0.1, plateau_runs="exclude")
    with pytest.raises(ValueError, match="alpha"):
        Rule(alpha=1.5, min_runs=3, confidence=0.95, matched_loss_rtol=0.1, plateau_runs="exclude")
