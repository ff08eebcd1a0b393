"""Evidence: how a claim is decided between two arms (pretrained vs from scratch) across runs.

Plain statistics on per-run numbers, no I/O. The unit of replication is the run (one seed of one
(task, init)): each arm contributes one number per run, and the noise of a comparison is the spread
of those numbers across runs — never a per-example standard error, a binomial error or the grid
points of one surface (those check each number; they are not independent replicates of it).

**The test** (`compare`) is registered in the analysis plan (conf/plan/<preset>.yaml) and holds its
level at n = 3–10 per arm:

- ``permutation`` — an **exact permutation test** of the difference of means: every relabelling of
  the pooled runs into arms of the observed sizes is enumerated (C(n, k) of them) while there are
  at most ``Rule.exact_max``; beyond, ``Rule.mc_draws`` seeded relabellings (p = (k + 1)/(draws + 1)).
  Exact under exchangeable arms whatever their shape: skew, ties, values quantised to 1/128,
  constant arms (two constant arms that differ get p = 1/C(n, k) one-sided, never 0). Exchangeable
  arms are not the only null a reviewer asks about: with equal means but unequal spread (sd ratio
  up to 10) every exchangeability test over-rejects at n = 5 — the five wide-arm runs all land on
  one side of the narrow arm with probability ≈ 2/2⁵ — so the claim's p is the **larger** of the
  permutation p and Welch's p (an intersection–union p: it holds its level wherever either test
  holds it, exchangeable arms or normal per-run numbers with unequal variances). Equal means with
  both skew and unequal spread cannot be tested at n = 5 by any test (Bahadur & Savage 1956); the
  report's method sentence says so.
- ``rank`` — the same exact permutation test on **Gehan's scores** (Mann–Whitney with censoring):
  registered for ordinal numbers, and used for every claim whose number is right-censored in some
  run (a width whose interval reached its grid's end, ``<key>_bounded`` = 0, is a lower bound).
  Pair (x, y) scores +1 when x is surely larger (y uncensored and x ≥ y, strictly when x is
  uncensored), −1 when surely smaller, 0 otherwise; a run's score is its sum over all pooled runs,
  and the statistic is the sum of arm a's scores.

**Three decisions** at level α: the one-sided exact p-values in both directions are computed; the
claim's p is min(1, 2 · min(p_greater, p_less)) (for ``permutation``, the larger of that and Welch's
two-sided p); when the Holm-adjusted p is below α, the verdict follows the smaller one-sided p's
direction — supported when it is the registered direction, contradicted when it is the mirror.
Under the null each direction is decided with probability ≤ α/2, so **any** decided verdict
(supported or contradicted) occurs with probability ≤ α (tests/test_calibration.py checks it on
A/A data through the claims layer). The smallest p n can give is ``Comparison.p_min`` = 2/C(n, k):
2/20 = 0.1 at 3 + 3 runs, 2/126 at 5 + 4, 2/252 at 5 + 5 — multiplied by the family's size by
Holm's first step; where that exceeds α the claim cannot be decided at this n, and the sentence
says so (it never falls back to a test that is not calibrated).

**The effect** (description beside the decision, in the metric's units): the Hodges–Lehmann shift
(the median of the n_a·n_b pairwise differences a_i − b_j) with its exact distribution-free
interval, inverted from the Mann–Whitney null distribution (the achieved level is stated: at 3 + 3
runs the most an exact interval can reach is 90%); every bound is a difference of two observed
values, so it never leaves the metric's range. With censored values the effect is Gehan's
concordance (P(a > b) − P(a < b) over the pairs that can be ordered, in [−1, 1]) without an
interval. Welch's difference of means and Hedges' g (with the small-sample correction
J = 1 − 3/(4(n_a + n_b) − 9)) stay as descriptions. Each arm's summary (`aggregate`) is its mean,
sd, median and a seeded percentile-bootstrap interval of the mean, which lies within the observed
values and so within the metric's range.

- ``tost`` — **equivalence** of one arm's per-run change to zero within a registered margin ±m
  (Schuirmann's two one-sided tests): H0: μ ≤ −m is tested by the one-sample t statistic
  (x̄ + m)/(s/√n), H0: μ ≥ +m by (x̄ − m)/(s/√n), each one-sided on n − 1 degrees of freedom; the
  claim's p is the larger of the two (`equivalence`). Registered for robustness to overfitting:
  arm a (pretrained) is tested, arm b (from scratch) is the comparison, described beside it (its
  own mean change and TOST p, the difference of means and Hodges–Lehmann shift between the arms)
  and never part of the decision. Decisions: **supported** only when both one-sided tests reject —
  the TOST p, Holm-adjusted with the family, below α; otherwise not resolved (never
  contradicted: a drop beyond the margin is not the null of this test, and calling it would spend
  α a second time at the margin, where both verdicts are wrong; the sentence shows the interval).
  Why a t and not an exact test: the per-run number is a difference of two accuracies on the same
  ~900 dev examples (a sum over examples: close to normal) and the exact alternative, Fisher's
  sign-flip test, needs symmetry as much as t needs normality while its smallest p, 2⁻ⁿ = 1/32 at
  n = 5, cannot pass Holm's α/6 (and it fails under skew as the t does). The t-TOST holds its
  level at the margin for normal and heavy-tailed symmetric per-run numbers (t₃) with ties on a
  1/872 grid; with skew whose long tail points beyond the margin it does not — at α = 5% about 6%
  at skewness 0.3, 7% at 0.6, 9% at 1 — and neither does any test of a mean at n = 5 (Bahadur &
  Savage 1956); tests/test_calibration.py measures both. An arm with no spread (every run the same
  number) gets p = 1: nothing to test against. The interval printed is the (1 − 2α) t interval of
  the arm's mean (TOST at α is the interval inside ±m), within [−1, 1] for a change of a metric in
  [0, 1].

Several claims decided together form one family: their p-values get **Holm's step-down
correction** (``holm``). The family is every claim the plan registers, decidable or not: a claim
without a test enters with p = 1 (report/claims.py).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy import stats

SUPPORTED, CONTRADICTED, UNRESOLVED, DESCRIPTIVE, NOT_COMPARABLE = (
    "supported",
    "contradicted",
    "not resolved",
    "descriptive only",
    "not comparable",
)
VERDICTS = (SUPPORTED, CONTRADICTED, UNRESOLVED, NOT_COMPARABLE, DESCRIPTIVE)
DECIDED = (SUPPORTED, CONTRADICTED)

PLATEAU_RULES = ("exclude", "block")
TESTS = ("permutation", "rank", "tost")  # the registered tests (module docstring)
EQUIVALENCE = ("tost",)  # tests of one arm within a margin (supported or not resolved)


@dataclass(frozen=True)
class Rule:
    """The decision's thresholds (the analysis plan, conf/plan/<preset>.yaml; fixed before running)."""

    alpha: float  # family-wise error rate, Holm-adjusted p must be below it
    min_runs: int  # runs per arm below which a comparison is descriptive only
    confidence: float  # of every interval (effects and per-arm means)
    matched_loss_rtol: float  # training losses at θ1 further apart (relative): not comparable unless matched
    plateau_runs: str  # runs that did not beat their majority baseline: "exclude" them or "block" the claim
    exact_max: int = 20000  # relabellings enumerated up to this many; beyond, Monte Carlo
    mc_draws: int = 20000  # seeded relabellings of the Monte-Carlo permutation test
    bootstrap: int = 2000  # seeded resamples of each arm's percentile interval

    def __post_init__(self):
        if not 0.0 < self.alpha < 1.0:
            raise ValueError(f"alpha must be in (0, 1), got {self.alpha}")
        if int(self.min_runs) < 2:
            raise ValueError(f"min_runs must be >= 2 (a spread needs two runs), got {self.min_runs}")
        if not 0.0 < self.confidence < 1.0:
            raise ValueError(f"confidence must be in (0, 1), got {self.confidence}")
        if self.matched_loss_rtol < 0:
            raise ValueError(f"matched_loss_rtol must be >= 0, got {self.matched_loss_rtol}")
        if self.plateau_runs not in PLATEAU_RULES:
            raise ValueError(
                f"plateau_runs must be one of {', '.join(PLATEAU_RULES)}, got {self.plateau_runs!r}"
            )
        if int(self.exact_max) < 1 or int(self.mc_draws) < 100 or int(self.bootstrap) < 100:
            raise ValueError(
                f"exact_max must be >= 1, mc_draws and bootstrap >= 100 "
                f"(got {self.exact_max}, {self.mc_draws}, {self.bootstrap})"
            )


@dataclass(frozen=True)
class Options:
    """What the claims read besides the rule (the analysis plan)."""

    width_eps: str  # ε of the fallback width along δ1 (a flatness summary key width_x_<ε>)
    min_epochs: int  # long training shorter than this cannot show overfitting


@dataclass(frozen=True)
class Aggregate:
    """One arm's number over its runs: mean, sample sd (ddof = 1), n, the seeded percentile-bootstrap
    interval of the mean (within the observed values), median and how many values are censored."""

    mean: float
    std: float
    n: int
    ci_low: float
    ci_high: float
    median: float = math.nan
    censored: int = 0

    def as_dict(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Comparison:
    """The registered test of arm a against arm b, and the effect with its interval."""

    a: Aggregate
    b: Aggregate
    test: str  # "permutation" or "rank" (module docstring)
    exact: bool  # every relabelling enumerated (else Monte Carlo)
    relabellings: int  # C(n_a + n_b, n_a)
    p_greater: float  # one-sided, H1: a > b
    p_less: float  # one-sided, H1: a < b
    p: float  # the claim's two-sided p (three decisions), unadjusted
    p_min: float  # the smallest p these n can give
    effect: str  # "Hodges–Lehmann shift" or "Gehan concordance"
    difference: float  # the effect (a − b)
    ci_low: float
    ci_high: float
    ci_level: float  # the exact interval's achieved level (NaN: no interval)
    mean_difference: float  # description
    welch_p: float  # description for "rank"; part of p for "permutation"
    hedges_g: float
    g_low: float
    g_high: float
    margin: float = math.nan  # tost: the registered equivalence margin ±m (else NaN)
    b_p: float = math.nan  # tost: the comparison arm's own TOST p (described, not decided on)

    @property
    def direction(self) -> int:
        """+1 when the data point to a > b (the smaller one-sided p), −1 to a < b, 0 when tied;
        for ``tost``: +1 when the tested arm lies within the margin (its TOST p below 1/2)."""
        if self.test in EQUIVALENCE:
            return 1 if self.p < 0.5 else 0
        if self.p_greater < self.p_less:
            return 1
        return -1 if self.p_less < self.p_greater else 0

    @property
    def test_name(self) -> str:
        kind = "exact" if self.exact else "Monte-Carlo"
        if self.test == "tost":
            return f"TOST within ±{self.margin:g}: two one-sided t-tests of the pretrained runs' mean"
        if self.test == "rank":
            return f"{kind} permutation test on Gehan ranks"
        return f"{kind} permutation test of the difference of means (∧ Welch)"

    def as_dict(self) -> dict:
        d = asdict(self)
        d["a"], d["b"] = self.a.as_dict(), self.b.as_dict()
        d["test_name"] = self.test_name
        return d


def _clean(values: Sequence[float | None], censored: Sequence[bool] | None = None):
    cens = [False] * len(values) if censored is None else list(censored)
    pairs = [(float(v), bool(c)) for v, c in zip(values, cens) if v is not None and math.isfinite(float(v))]
    return np.asarray([v for v, _ in pairs], dtype=float), np.asarray([c for _, c in pairs], dtype=bool)


def aggregate(
    values: Sequence[float | None],
    confidence: float,
    censored: Sequence[bool] | None = None,
    draws: int = 2000,
) -> Aggregate:
    """Mean, sd, n, the `confidence` percentile-bootstrap interval of the mean (seeded, `draws`
    resamples: it lies within the observed values, so within the metric's range), median and the
    censored count over the finite `values`."""
    x, c = _clean(values, censored)
    n = int(x.size)
    if n == 0:
        return Aggregate(math.nan, math.nan, 0, math.nan, math.nan)
    mean, median = float(x.mean()), float(np.median(x))
    if n == 1:
        return Aggregate(mean, math.nan, 1, math.nan, math.nan, median, int(c.sum()))
    means = x[np.random.default_rng(0).integers(0, n, (int(draws), n))].mean(axis=1)
    lo, hi = np.quantile(means, [0.5 - confidence / 2, 0.5 + confidence / 2])
    lo, hi = max(float(lo), float(x.min())), min(float(hi), float(x.max()))  # rounding never leaves the data
    return Aggregate(mean, float(x.std(ddof=1)), n, lo, hi, median, int(c.sum()))


@functools.lru_cache(maxsize=64)
def _relabellings(n: int, na: int) -> np.ndarray:
    """Every choice of arm a's members among n pooled runs, as a 0/1 matrix (the observed one first)."""
    rows = list(itertools.combinations(range(n), na))
    masks = np.zeros((len(rows), n))
    masks[np.repeat(np.arange(len(rows)), na), np.asarray(rows).ravel()] = 1.0
    return masks


def gehan_scores(values: np.ndarray, censored: np.ndarray) -> np.ndarray:
    """Each pooled run's Gehan score: Σ over the other runs of +1 (surely larger), −1 (surely
    smaller), 0 (tied or not orderable); a censored value is a lower bound of the true one."""
    x, c = values[:, None], censored[:, None]
    y, d = values[None, :], censored[None, :]
    larger = ~d & ((x > y) | ((x == y) & c))
    smaller = ~c & ((x < y) | ((x == y) & d))
    return (larger.astype(int) - smaller.astype(int)).sum(axis=1).astype(float)


def permutation_pvalues(scores: np.ndarray, na: int, rule: Rule, observed: float | None = None):
    """One-sided p-values (a larger, a smaller) of the statistic Σ_{i ∈ a} scores_i (monotone in the
    difference of means for scores = the values) over the relabellings: exact when C(n, na) ≤
    rule.exact_max, else rule.mc_draws seeded ones with p = (k + 1)/(draws + 1). Returns
    (p_greater, p_less, exact, C(n, na))."""
    n = scores.size
    total = math.comb(n, na)
    t0 = float(scores[:na].sum()) if observed is None else observed
    tol = 1e-9 * max(1.0, float(np.abs(scores).sum()))
    if total <= rule.exact_max:
        t = _relabellings(n, na) @ scores
        return float(np.mean(t >= t0 - tol)), float(np.mean(t <= t0 + tol)), True, total
    rng = np.random.default_rng(0)
    t = scores[np.argsort(rng.random((int(rule.mc_draws), n)), axis=1)[:, :na]].sum(axis=1)
    draws = int(rule.mc_draws)
    return (
        (int(np.sum(t >= t0 - tol)) + 1) / (draws + 1),
        (int(np.sum(t <= t0 + tol)) + 1) / (draws + 1),
        False,
        total,
    )


@functools.lru_cache(maxsize=64)
def _mann_whitney_cdf(m: int, n: int) -> np.ndarray:
    """P(U ≤ u), u = 0..m·n, of the Mann–Whitney U under the null (no ties): by counting."""
    # counts[i][j][u]: arrangements of i a's and j b's with u (a > b) pairs — the standard recursion
    prev = [np.zeros(m * n + 1) for _ in range(n + 1)]
    for j in range(n + 1):
        prev[j][0] = 1.0
    for _i in range(1, m + 1):
        cur = [np.zeros(m * n + 1) for _ in range(n + 1)]
        cur[0][0] = 1.0
        for j in range(1, n + 1):
            shifted = np.zeros(m * n + 1)
            shifted[j:] = prev[j][: m * n + 1 - j]  # the new (largest) a sits above all j b's
            cur[j] = shifted + cur[j - 1]
        prev = cur
    pmf = prev[n] / math.comb(m + n, m)
    return np.cumsum(pmf)


def hodges_lehmann(a: np.ndarray, b: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    """(shift, low, high, achieved level): the median of the pairwise differences a_i − b_j and the
    exact interval [D_(k), D_(mn+1−k)] with the largest k whose level 1 − 2·P(U ≤ k − 1) is still ≥
    `confidence`; when even k = 1 falls short, k = 1 and its (lower) level."""
    d = np.sort((a[:, None] - b[None, :]).ravel())
    shift = float(np.median(d))
    cdf = _mann_whitney_cdf(a.size, b.size)
    k = 1
    for cand in range(1, d.size // 2 + 1):
        if 1 - 2 * cdf[cand - 1] >= confidence - 1e-12:
            k = cand
        else:
            break
    level = float(1 - 2 * cdf[k - 1])
    return shift, float(d[k - 1]), float(d[d.size - k]), level


def _welch_and_g(xa: np.ndarray, xb: np.ndarray, confidence: float) -> tuple[float, float, float, float]:
    """Welch's two-sided p (description / the guard of ``permutation``) and Hedges' g with its
    normal-approximation interval (Hedges & Olkin 1985)."""
    na, nb = xa.size, xb.size
    diff = float(xa.mean() - xb.mean())
    va, vb = xa.var(ddof=1) / na, xb.var(ddof=1) / nb
    se = math.sqrt(va + vb)
    if se == 0.0:  # both arms constant: Welch has no spread to test against (the permutation p decides)
        p = 1.0 if diff == 0 else 0.0
    else:
        df = (va + vb) ** 2 / (va**2 / (na - 1) + vb**2 / (nb - 1))
        p = float(2 * stats.t.sf(abs(diff / se), df))
    n = na + nb
    pooled = math.sqrt(((na - 1) * xa.var(ddof=1) + (nb - 1) * xb.var(ddof=1)) / (n - 2))
    if pooled > 0:
        g = (1 - 3 / (4 * n - 9)) * diff / pooled
        se_g = math.sqrt(n / (na * nb) + g**2 / (2 * n))
        z = float(stats.norm.ppf(0.5 + confidence / 2))
        return p, g, g - z * se_g, g + z * se_g
    g = 0.0 if diff == 0 else math.copysign(math.inf, diff)
    return p, g, g, g


def compare(
    a: Sequence[float | None],
    b: Sequence[float | None],
    rule: Rule,
    test: str = "permutation",
    censored_a: Sequence[bool] | None = None,
    censored_b: Sequence[bool] | None = None,
) -> Comparison | None:
    """The registered `test` of arm `a` against arm `b` (module docstring); any censored value makes it
    ``rank``. None with fewer than 2 runs in an arm (nothing to test)."""
    if test not in TESTS:
        raise ValueError(f"unknown test {test!r} (known: {', '.join(TESTS)})")
    if test in EQUIVALENCE:
        raise ValueError(f"test {test!r} needs its margin: call equivalence(a, b, rule, margin)")
    xa, ca = _clean(a, censored_a)
    xb, cb = _clean(b, censored_b)
    ga = aggregate(xa, rule.confidence, ca, rule.bootstrap)
    gb = aggregate(xb, rule.confidence, cb, rule.bootstrap)
    if xa.size < 2 or xb.size < 2:
        return None
    if ca.any() or cb.any():
        test = "rank"
    pooled, cens = np.concatenate([xa, xb]), np.concatenate([ca, cb])
    scores = gehan_scores(pooled, cens) if test == "rank" else pooled
    pg, pl, exact, total = permutation_pvalues(scores, xa.size, rule)
    p = min(1.0, 2.0 * min(pg, pl))
    welch_p, g, g_lo, g_hi = _welch_and_g(xa, xb, rule.confidence)
    if test == "permutation":
        p = max(p, welch_p)
    p_min = min(1.0, 2.0 / total) if exact else min(1.0, 2.0 / (rule.mc_draws + 1))
    if test == "rank" and (ca.any() or cb.any()):
        s_a = float(scores[: xa.size].sum())  # Σ over cross pairs (within-arm pairs cancel)
        effect, diff, lo, hi, level = (
            "Gehan concordance",
            s_a / (xa.size * xb.size),
            math.nan,
            math.nan,
            math.nan,
        )
    else:
        effect = "Hodges–Lehmann shift"
        diff, lo, hi, level = hodges_lehmann(xa, xb, rule.confidence)
    return Comparison(
        ga, gb, test, exact, total, pg, pl, p, p_min, effect, diff, lo, hi, level,
        float(xa.mean() - xb.mean()), welch_p, g, g_lo, g_hi,
    )  # fmt: skip


def tost_pvalues(values: Sequence[float], margin: float) -> tuple[float, float, float]:
    """Schuirmann's two one-sided t-tests of the mean of `values` within ±`margin`: (p, p_lower,
    p_upper) — p_lower of H0: μ ≤ −margin, p_upper of H0: μ ≥ +margin, p = max of the two. Every p
    is 1 with fewer than 2 finite values or no spread (nothing to test against)."""
    x, _ = _clean(values)
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"the equivalence margin must be a positive number, got {margin}")
    if x.size < 2:
        return 1.0, 1.0, 1.0
    se = float(x.std(ddof=1)) / math.sqrt(x.size)
    if se == 0.0:
        return 1.0, 1.0, 1.0
    mean, df = float(x.mean()), x.size - 1
    p_lower = float(stats.t.sf((mean + margin) / se, df))
    p_upper = float(stats.t.cdf((mean - margin) / se, df))
    return max(p_lower, p_upper), p_lower, p_upper


def mean_interval(values: Sequence[float], level: float, bounds: tuple[float, float] = (-1.0, 1.0)):
    """(mean, low, high): the `level` t interval of the mean of `values`, clipped to `bounds` (a
    change of a metric in [0, 1] lies in [−1, 1]); NaN bounds with fewer than 2 values."""
    x, _ = _clean(values)
    if x.size == 0:
        return math.nan, math.nan, math.nan
    mean = float(x.mean())
    if x.size < 2:
        return mean, math.nan, math.nan
    half = float(stats.t.ppf(0.5 + level / 2, x.size - 1)) * float(x.std(ddof=1)) / math.sqrt(x.size)
    return mean, max(bounds[0], mean - half), min(bounds[1], mean + half)


def equivalence(
    a: Sequence[float | None], b: Sequence[float | None], rule: Rule, margin: float
) -> Comparison | None:
    """The ``tost`` test (module docstring): arm `a`'s per-run numbers within ±`margin` of 0, arm `b`
    described beside it. ``p`` is a's TOST p (``p_greater``: its lower one-sided p, ``p_less``: its
    upper); the effect is a's mean with its (1 − 2α) t interval. None with fewer than 2 runs in an
    arm (nothing to test)."""
    xa, _ = _clean(a)
    xb, _ = _clean(b)
    if xa.size < 2 or xb.size < 2:
        return None
    p, p_lower, p_upper = tost_pvalues(xa, margin)
    level = 1.0 - 2.0 * rule.alpha
    mean, lo, hi = mean_interval(xa, level)
    welch_p, g, g_lo, g_hi = _welch_and_g(xa, xb, rule.confidence)
    return Comparison(
        aggregate(xa, rule.confidence, None, rule.bootstrap),
        aggregate(xb, rule.confidence, None, rule.bootstrap),
        "tost", False, 0, p_lower, p_upper, p, 0.0, "mean change (pretrained)", mean, lo, hi, level,
        float(xa.mean() - xb.mean()), welch_p, g, g_lo, g_hi, float(margin), tost_pvalues(xb, margin)[0],
    )  # fmt: skip


def orderable(
    a: Sequence[float], b: Sequence[float], censored_a: Sequence[bool], censored_b: Sequence[bool]
) -> bool:
    """Whether some run of arm a and some run of arm b can be compared: two measured values, or a
    lower bound above a measured value. Not when every cross pair holds a lower bound at or below
    the other value (e.g. every run of both arms censored)."""
    xa, ca = _clean(a, censored_a)
    xb, cb = _clean(b, censored_b)
    x, y = xa[:, None], xb[None, :]
    c, d = ca[:, None], cb[None, :]
    both = ~c & ~d
    a_above = ~d & c & (x >= y)
    b_above = ~c & d & (y >= x)
    return bool(xa.size and xb.size and (both | a_above | b_above).any())


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
    """Three decisions: descriptive only below `rule.min_runs` runs per arm; when the Holm-adjusted p
    is below α, supported if the smaller one-sided p points the registered way (`better` = +1: the
    claim says a > b; −1: a < b), contradicted if it points the mirror way; else not resolved."""
    if min(comparison.a.n, comparison.b.n) < int(rule.min_runs):
        return DESCRIPTIVE
    if comparison.test in EQUIVALENCE:  # equivalence: supported when both one-sided tests reject
        return SUPPORTED if math.isfinite(p_adjusted) and p_adjusted < rule.alpha else UNRESOLVED
    if not (math.isfinite(p_adjusted) and p_adjusted < rule.alpha) or comparison.direction == 0:
        return UNRESOLVED
    return SUPPORTED if comparison.direction == better else CONTRADICTED


def describe_n(comparison: Comparison) -> str:
    """'n = 3/3' (runs of arm a / arm b)."""
    return f"n = {comparison.a.n}/{comparison.b.n}"
