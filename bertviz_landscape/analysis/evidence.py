"""Evidence: how a claim is decided between two arms (pretrained vs from scratch) across runs.

Plain statistics on per-run numbers, no I/O. The unit of replication is the run (one seed of one
(task, init)): each arm contributes one number per run, and the noise of a comparison is the spread
of those numbers across runs — never a per-example standard error, a binomial error or the grid
points of one surface (those check each number; they are not independent replicates of it).

The test: **Welch's two-sample t-test, two-sided** (unequal variances, Welch–Satterthwaite degrees
of freedom). Chosen over a permutation test because with the demo's n = 3 runs per arm the exact
permutation test has only C(6, 3) = 20 relabellings, so its smallest two-sided p is 2/20 = 0.1 and it
could never decide at α = 0.05 (still less after Holm's correction); Welch's test assumes roughly
normal per-run numbers, which the A/A acceptance test (tests/test_evidence.py) checks it keeps its
nominal rate for. ``permutation_p`` (exact when the relabellings are few) is given beside it as a
check that needs no normality.

The effect: the difference of means ``a − b`` with its Welch 95% interval, and Hedges' g (the
standardised difference with the small-sample correction J = 1 − 3/(4(n_a + n_b) − 9)) with its
normal-approximation interval (Hedges & Olkin 1985: se² = (n_a + n_b)/(n_a n_b) + g²/(2(n_a + n_b))).

Several claims decided together form one family: their p-values get **Holm's step-down
correction** (``holm``), which keeps the family-wise error ≤ α without assuming independence.

The verdict (``verdict``): with fewer than ``Rule.min_runs`` runs in either arm, "descriptive only
(n = …)" — never supported or contradicted; else, when the Holm-adjusted p < α, "supported" if the
effect points the way the claim says (``better`` = +1: the claim says arm a is higher; −1: lower)
and "contradicted" if it points the other way; else "not resolved". The thresholds (``Rule``) come
from the configuration (conf/evidence/default.yaml), fixed before any run.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

SUPPORTED, CONTRADICTED, UNRESOLVED, DESCRIPTIVE = (
    "supported",
    "contradicted",
    "not resolved",
    "descriptive only",
)


@dataclass(frozen=True)
class Rule:
    """The decision's thresholds (conf/evidence/default.yaml; fixed before running)."""

    alpha: float  # family-wise error rate, Holm-adjusted p must be below it
    min_runs: int  # runs per arm below which a comparison is descriptive only
    confidence: float  # of every interval (effects and per-arm means)
    matched_loss_rtol: float  # training losses at θ1 differing by more than this (relative): flagged

    def __post_init__(self):
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"evidence.alpha must be in (0, 1), got {self.alpha}")
        if int(self.min_runs) < 2:
            raise ValueError(f"evidence.min_runs must be >= 2 (a spread needs two runs), got {self.min_runs}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"evidence.confidence must be in (0, 1), got {self.confidence}")
        if self.matched_loss_rtol < 0:
            raise ValueError(f"evidence.matched_loss_rtol must be >= 0, got {self.matched_loss_rtol}")


@dataclass(frozen=True)
class Options:
    """What the claims read besides the rule (conf/evidence/default.yaml)."""

    width_eps: str  # ε of the fallback width along δ1 (a flatness summary key width_x_<ε>)
    min_epochs: int  # long training shorter than this cannot show overfitting


@dataclass(frozen=True)
class Aggregate:
    """One arm's number over its runs: mean, sample std (ddof = 1), n and the t interval of the mean."""

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """Welch's t-test of arm a against arm b, and the effect a − b with its intervals."""

    a: Aggregate
    b: Aggregate
    difference: float  # mean(a) − mean(b)
    ci_low: float
    ci_high: float
    t: float
    df: float
    p: float  # two-sided, unadjusted
    hedges_g: float
    g_low: float
    g_high: float
    permutation_p: float  # two-sided, on the difference of means (exact or Monte-Carlo)
    test: str = "Welch's t-test (two-sided)"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["a"], d["b"] = self.a.as_dict(), self.b.as_dict()
        return d


def _clean(values: Sequence[float | None]) -> np.ndarray:
    x = np.asarray([float(v) for v in values if v is not None], dtype=float)
    return x[np.isfinite(x)]


def aggregate(values: Sequence[float | None], confidence: float) -> Aggregate:
    """Mean, std, n and the `confidence` t interval of the mean over the finite `values`."""
    x = _clean(values)
    n = int(x.size)
    if n == 0:
        return Aggregate(math.nan, math.nan, 0, math.nan, math.nan)
    mean = float(x.mean())
    if n == 1:
        return Aggregate(mean, math.nan, 1, math.nan, math.nan)
    std = float(x.std(ddof=1))
    half = float(stats.t.ppf(0.5 + confidence / 2, n - 1)) * std / math.sqrt(n)
    return Aggregate(mean, std, n, mean - half, mean + half)


@functools.lru_cache(maxsize=32)
def _relabellings(n: int, na: int) -> np.ndarray:
    rows = list(itertools.combinations(range(n), na))
    masks = np.zeros((len(rows), n))
    masks[np.repeat(np.arange(len(rows)), na), np.asarray(rows).ravel()] = 1.0
    return masks


def permutation_p(a: np.ndarray, b: np.ndarray, draws: int = 20000, seed: int = 0) -> float:
    """Two-sided permutation p of |mean(a) − mean(b)|: exact over every relabelling when there are at
    most `draws` of them, else Monte-Carlo with `draws` seeded relabellings (p = (k + 1)/(draws + 1))."""
    pooled = np.concatenate([a, b])
    na, n = a.size, pooled.size
    observed = abs(a.mean() - b.mean())
    tol = 1e-12 * max(1.0, observed)
    if math.comb(n, na) <= draws:
        masks = _relabellings(n, na)  # every choice of arm a's members, as a 0/1 matrix
        sum_a = masks @ pooled
        diffs = np.abs(sum_a / na - (pooled.sum() - sum_a) / (n - na))
        return float(np.mean(diffs >= observed - tol))
    rng = np.random.default_rng(seed)
    perms = np.argsort(rng.random((draws, n)), axis=1)
    sum_a = pooled[perms[:, :na]].sum(axis=1)
    hits = int(np.sum(np.abs(sum_a / na - (pooled.sum() - sum_a) / (n - na)) >= observed - tol))
    return (hits + 1) / (draws + 1)


def welch(a: Sequence[float | None], b: Sequence[float | None], confidence: float) -> Comparison:
    """Welch's t-test of the runs of arm `a` against arm `b` (non-finite values left out); needs ≥ 2
    runs per arm (else p and the intervals are NaN)."""
    xa, xb = _clean(a), _clean(b)
    ga, gb = aggregate(xa, confidence), aggregate(xb, confidence)
    diff = ga.mean - gb.mean if ga.n and gb.n else math.nan
    nan = math.nan
    if ga.n < 2 or gb.n < 2:
        return Comparison(ga, gb, diff, nan, nan, nan, nan, nan, nan, nan, nan, nan)
    va, vb = ga.std**2 / ga.n, gb.std**2 / gb.n
    se = math.sqrt(va + vb)
    if se == 0.0:  # both arms constant: the difference is exact
        p = 1.0 if diff == 0 else 0.0
        t, df, lo, hi = (0.0 if diff == 0 else math.copysign(math.inf, diff)), math.inf, diff, diff
    else:
        t = diff / se
        df = (va + vb) ** 2 / (va**2 / (ga.n - 1) + vb**2 / (gb.n - 1))
        p = float(2 * stats.t.sf(abs(t), df))
        half = float(stats.t.ppf(0.5 + confidence / 2, df)) * se
        lo, hi = diff - half, diff + half
    n = ga.n + gb.n
    pooled = math.sqrt(((ga.n - 1) * ga.std**2 + (gb.n - 1) * gb.std**2) / (n - 2))
    if pooled > 0:
        g = (1 - 3 / (4 * n - 9)) * diff / pooled
        se_g = math.sqrt(n / (ga.n * gb.n) + g**2 / (2 * n))
        z = float(stats.norm.ppf(0.5 + confidence / 2))
        g_lo, g_hi = g - z * se_g, g + z * se_g
    else:
        g = g_lo = g_hi = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return Comparison(ga, gb, diff, lo, hi, t, df, p, g, g_lo, g_hi, permutation_p(xa, xb))


def holm(pvalues: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values (same order as given; NaN stays NaN and is not counted):
    sorted ascending p_(1) ≤ … ≤ p_(m), adjusted p_(i) = max_{j ≤ i} min(1, (m − j + 1) p_(j))."""
    p = np.asarray(pvalues, dtype=float)
    out = np.full(p.shape, math.nan)
    ok = np.flatnonzero(np.isfinite(p))
    m = ok.size
    running = 0.0
    for rank, i in enumerate(ok[np.argsort(p[ok], kind="stable")]):
        running = max(running, min(1.0, (m - rank) * p[i]))
        out[i] = running
    return [float(v) for v in out]


def verdict(comparison: Comparison, p_adjusted: float, better: int, rule: Rule) -> str:
    """The verdict of one claim: descriptive only below `rule.min_runs` runs per arm; else supported
    / contradicted when the Holm-adjusted p < α and the effect points the claim's way (`better` = +1:
    the claim says a > b; −1: a < b) / the other way; else not resolved."""
    if min(comparison.a.n, comparison.b.n) < int(rule.min_runs):
        return DESCRIPTIVE
    if not (math.isfinite(p_adjusted) and p_adjusted < rule.alpha):
        return UNRESOLVED
    return SUPPORTED if comparison.difference * better > 0 else CONTRADICTED


def describe_n(comparison: Comparison) -> str:
    """'n = 3/3' (runs of arm a / arm b)."""
    return f"n = {comparison.a.n}/{comparison.b.n}"
