"""Calibration of the decision through the claims layer (report/claims.decide_all, the code path the
report uses): A/A data built as analysis JSONs — equal means with sd ratio up to 10, lognormal skew,
n = 5/4 and 5/5, values quantised to 1/128, censored widths, constant arms, plateau runs excluded by
the rule — decide a claim (supported or contradicted) at most α + 3 binomial standard errors of the
time, and the planted effect the plan states is detected at the power it states.

Each setting registers one claim (a plan whose family is that claim alone: the most sensitive
calibration, Holm multiplies by 1) — except the family setting, which fills all six registered
claims."""

from __future__ import annotations

import math

import numpy as np
import pytest

from bertviz_landscape.publish.report import claims
from bertviz_landscape.publish.report import plan as plan_mod

REPS = 2000
PLAN = plan_mod.preset("demo")


def _plan(claim: str | None, min_runs: int = 3):
    doc = dict(PLAN, min_runs=min_runs)
    if claim is not None:
        doc["claims"] = {claim: PLAN["claims"][claim]}
    return plan_mod.plan_from(doc)


def _run(analysis, init, seed, numbers, beat=True):
    return {
        "analysis": analysis,
        "runs": [
            {
                "run": f"/r/{init}{seed}",
                "task": "sst2",
                "init": init,
                "seed": seed,
                "beat_baseline": beat,
                "dev_metric": 0.8 if beat else 0.5,
                "majority_baseline": 0.51,
                "primary_metric": "accuracy",
            }
        ],
        "per_run": [{}],
        "numbers": numbers,
    }


def _analyses(pre, scr, analysis="consistency", key="regret_debiased", extra=None, beat=None):
    """One analysis's JSONs: a run per value; `extra(init, i)` adds numbers; `beat(init, i)` the baseline."""
    out = []
    for init, vals in (("pretrained", pre), ("scratch", scr)):
        for i, v in enumerate(vals):
            nums = {key: float(v)} | (extra(init, i) if extra else {})
            out.append(_run(analysis, init, i, nums, True if beat is None else beat(init, i)))
    return {analysis: out}


def _rate(draw, plan, reps=REPS, seed=0, want=(claims.SUPPORTED, claims.CONTRADICTED)):
    rng = np.random.default_rng(seed)
    hits = 0
    for _ in range(reps):
        verdicts = claims.decide_all(draw(rng), plan=plan)
        hits += any(v.verdict in want for v in verdicts)
    return hits / reps


ALPHA = PLAN["alpha"]
LIMIT = ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / REPS)


def _lognormal(rng, sigma, size, scale=1.0):
    """Lognormal values centred to mean 0 (sd `scale`): equal means whatever σ and scale."""
    x = rng.lognormal(0.0, sigma, size)
    return scale * (x - math.exp(sigma**2 / 2)) / math.sqrt((math.exp(sigma**2) - 1) * math.exp(sigma**2))


CONS = _plan("consistency")

# every registered claim: the analysis and the number its plan registers (the plan's metric)
CLAIM_DATA = {
    "consistency": ("consistency", "regret_debiased"),
    "easier_optimisation": ("trajectory", "path_loss_auc"),
    "lower_layers_invariant": ("layers", "rollback_dev_loss_slope"),
    "robust_to_overfitting": ("longtrain", "dev_slope_second_half"),
    "wider_optima": ("flatness", "invariant_width"),
    "shared_basins": ("basins", "barrier_dev"),
}


def _EXTRA(init, i):
    """What the gates read besides the metric: training long enough, matched J(θ1)."""
    return {"epochs": 20.0, "train_loss_theta1": 0.3}


def test_the_calibration_covers_the_whole_registered_family_at_its_metrics():
    assert {c: k for c, (_, k) in CLAIM_DATA.items()} == {c: r["metric"] for c, r in PLAN["claims"].items()}


SETTINGS = {
    # equal means, unequal spread (normal), both orientations, n = 5/4 and 5/5
    **{
        f"normal sd ratio {r:g} n={na}/{nb}": (
            lambda rng, r=r, na=na, nb=nb: _analyses(
                rng.normal(0.5, 0.01, na), rng.normal(0.5, 0.01 * r, nb)
            ),
            CONS,
        )
        for r in (1, 3, 10, 0.1)
        for na, nb in ((5, 4), (5, 5))
    },
    # skew: both arms one lognormal
    **{
        f"lognormal σ {s:g} n={na}/{nb}": (
            lambda rng, s=s, na=na, nb=nb: _analyses(_lognormal(rng, s, na), _lognormal(rng, s, nb)),
            CONS,
        )
        for s in (0.3, 0.5, 1.0)
        for na, nb in ((5, 4), (5, 5))
    },
    # values on a 1/128 grid (dev error on 128 examples): many ties
    "quantised 1/128 n=5/5": (
        lambda rng: _analyses(*(np.round(rng.normal(0.2, 0.015, 5) * 128) / 128 for _ in range(2))),
        CONS,
    ),
    # dev error on 128 examples with a run-to-run spread under one example, its mean half-way between
    # two grid points, 6 runs against 3: the smaller arm is often constant, and Welch (the old rule,
    # commit c50a317) then tests the larger arm against a noisy constant — through its claims layer it
    # decided 8.45% of 2000 (limit 6.46%; benchmarks/calibration_welch_vs_plan.py); the exact test 0.4%
    "quantised 1/128 sd 0.4 example, smaller arm often constant n=6/3": (
        lambda rng: _analyses(*(np.round(rng.normal(26.5, 0.4, n)) / 128 for n in (6, 3))),
        CONS,
    ),
    # constant arms (identical): never decided
    "constant arms n=5/5": (lambda rng: _analyses([0.5] * 5, [0.5] * 5), CONS),
    # censored widths: the basin reaches the grid's end (bound 1.0) in about half the runs of both arms
    "censored widths n=5/5": (
        lambda rng: (
            lambda pre, scr: _analyses(
                np.minimum(pre, 1.0),
                np.minimum(scr, 1.0),
                "flatness",
                "invariant_width",
                extra=lambda init, i: {
                    "invariant_width_bounded": float((pre if init == "pretrained" else scr)[i] < 1.0),
                    "train_loss_theta1": 0.3,
                },
            )
        )(rng.normal(1.0, 0.3, 5), rng.normal(1.0, 0.3, 5)),
        _plan("wider_optima"),
    ),
    # plateau runs excluded by the rule: seven runs per arm, runs 5 and 6 of each on the plateau
    "plateau excluded n=7/7": (
        lambda rng: _analyses(rng.normal(0.5, 0.05, 7), rng.normal(0.5, 0.05, 7), beat=lambda init, i: i < 5),
        CONS,
    ),
    # the whole registered family of six claims, every one A/A at n = 5/5
    "family of 6, all A/A n=5/5": (
        lambda rng: {
            name: datas
            for claim, (analysis, key) in CLAIM_DATA.items()
            for name, datas in _analyses(
                rng.normal(0.5, 0.1, 5), rng.normal(0.5, 0.1, 5), analysis, key, extra=_EXTRA
            ).items()
        },
        _plan(None),
    ),
}


@pytest.mark.parametrize("setting", list(SETTINGS))
def test_a_over_a_through_the_claims_layer_decides_at_most_alpha(setting):
    draw, plan = SETTINGS[setting]
    rate = _rate(draw, plan, reps=REPS if "family" not in setting else 500)
    limit = LIMIT if "family" not in setting else ALPHA + 3 * math.sqrt(ALPHA * (1 - ALPHA) / 500)
    assert rate <= limit, (setting, rate, limit)


@pytest.mark.parametrize("claim", list(PLAN["claims"]))
def test_the_planted_effect_the_plan_states_is_detected_at_its_power(claim):
    """The plan's planted effect (power.shift_sd run-to-run sds, power.runs_per_arm per arm) in one
    claim's registered direction (read from the plan), the whole registered family in Holm's
    correction, the others undecidable: supported at least power.power of the time; planted against
    the registered direction, contradicted as often."""
    power = PLAN["power"]
    n, shift = int(power["runs_per_arm"]), float(power["shift_sd"])
    direction = int(PLAN["claims"][claim]["direction"])
    analysis, key = CLAIM_DATA[claim]
    plan = _plan(None)
    assert len(plan.claims) == len(PLAN["claims"]) == 6

    def draw(sign):
        return lambda rng: _analyses(
            rng.normal(0.5 + sign * direction * shift * 0.05, 0.05, n),
            rng.normal(0.5, 0.05, n),
            analysis,
            key,
            extra=_EXTRA,
        )

    assert _rate(draw(+1), plan, reps=500, want=(claims.SUPPORTED,)) >= power["power"]
    assert _rate(draw(-1), plan, reps=500, seed=1, want=(claims.CONTRADICTED,)) >= power["power"]


# --- the equivalence test of robustness to overfitting (conf/plan/replicate.yaml: tost) ----------------
# The replicate registers robust_to_overfitting as a TOST of the pretrained runs' dev_last_minus_early
# within ±margin (evidence.equivalence). Its error is a wrong "supported": the true mean change at the
# margin (a real drop or gain of exactly the margin) declared equivalent. Calibrated here at both
# margins through the claims layer, with the claim alone in its family (Holm × 1: the most sensitive),
# on the per-run numbers the preset gives: normal and heavy-tailed (t₃) seed-to-seed spread of 0.5, 1
# and 2 points, quantised to the 872-example dev set's 1/872. Not held, and by no test of a mean at
# n = 5 (Bahadur & Savage 1956): skew whose long tail points beyond the margin — measured, not hidden,
# in test_far_side_skew_is_the_tost_s_documented_limit (evidence.py and the plan say so).
REPLICATE = plan_mod.preset("replicate")
TOST_CLAIM = "robust_to_overfitting"
TOST_REG = REPLICATE["claims"][TOST_CLAIM]
MARGIN = float(TOST_REG["margin"])
TOST_N = len(REPLICATE["seeds"]["confirm"])  # the plan's runs per arm


def _tost_plan(family: bool = False):
    doc = dict(REPLICATE)
    if not family:
        doc["claims"] = {TOST_CLAIM: TOST_REG}
    return plan_mod.plan_from(doc)


def _tost_analyses(pre, scr):
    """Long-training JSONs of the replicate's design: 20 epochs, measured from the plan's early epoch."""
    early = float(TOST_REG["early_epoch"])
    return _analyses(
        pre,
        scr,
        "longtrain",
        TOST_REG["metric"],
        extra=lambda init, i: {"num_epochs": float(REPLICATE["min_epochs"]), "early_epoch": early},
    )


def _centred(rng, shape, size):
    """Zero-mean, unit-sd per-run noise of the given shape (for the change's seed-to-seed spread)."""
    if shape == "normal":
        return rng.normal(0.0, 1.0, size)
    if shape == "t3":
        return rng.standard_t(3, size) / math.sqrt(3.0)
    raise ValueError(shape)


TOST_NULLS = {
    f"{shape}, sd {sd:g}, mean at {side:+d}·margin": (shape, sd, side)
    for shape in ("normal", "t3")
    for sd in (0.005, 0.01, 0.02)
    for side in (-1, +1)
}


@pytest.mark.parametrize("setting", list(TOST_NULLS))
def test_the_tost_at_the_margin_is_supported_at_most_alpha_of_the_time(setting):
    """The pretrained runs' true mean change exactly at ±margin (the TOST's null), n = the plan's
    confirm seeds; the from-scratch runs drop 5 points (they never enter the decision): "supported"
    at most α + 3 binomial s.e. of the time. Values quantised to the dev set's 1/872."""
    shape, sd, side = TOST_NULLS[setting]
    plan = _tost_plan()

    def draw(rng):
        pre = side * MARGIN + sd * _centred(rng, shape, TOST_N)
        pre = np.round(pre * 872) / 872
        return _tost_analyses(pre, rng.normal(-0.05, 0.02, TOST_N))

    _assert_tested(draw, plan)
    rate = _rate(draw, plan, want=(claims.SUPPORTED,))
    assert rate <= LIMIT, (setting, rate, LIMIT)


def _assert_tested(draw, plan):
    """The draw reaches the TOST (no rule blocks it): a calibration that never tests proves nothing."""
    v = next(
        v for v in claims.decide_all(draw(np.random.default_rng(99)), plan=plan) if v.claim == TOST_CLAIM
    )
    assert v.numbers.get("comparison", {}).get("test") == "tost", v.sentence
    assert v.numbers["measure"] == TOST_REG["metric"] and "TOST p =" in v.sentence, v.sentence


def test_far_side_skew_is_the_tost_s_documented_limit():
    """Per-run changes skewed with their long tail beyond the margin (lognormal σ 0.3, skewness ≈ 1,
    sd 1 point), the mean exactly at −margin: the t-TOST says "supported" more often than α — about
    9% at α = 5% (7% at skewness 0.6, 6% at 0.3), as evidence.py states; no test of a mean at n = 5
    holds its level here. Pinned so that the documented number stays true."""
    plan = _tost_plan()

    def draw(rng):
        pre = -MARGIN - 0.01 * _lognormal(rng, 0.3, TOST_N)  # long tail to the left of −margin
        return _tost_analyses(np.round(pre * 872) / 872, rng.normal(-0.05, 0.02, TOST_N))

    _assert_tested(draw, plan)
    rate = _rate(draw, plan, want=(claims.SUPPORTED,))
    assert ALPHA < rate < 0.12, rate


TOST_POWER = REPLICATE["power"]["equivalence"]


def test_the_tost_at_a_true_zero_change_is_supported_at_the_power_the_plan_states():
    """A true zero change with the plan's run-to-run sd (power.equivalence.sd) over the plan's confirm
    seeds, the whole registered family in Holm's correction (the others undecidable: p × 6): supported
    at least power.equivalence.power of the time; at twice that sd the power falls (stated, not
    promised)."""
    assert int(TOST_POWER["runs_per_arm"]) == TOST_N
    plan = _tost_plan(family=True)
    assert len(plan.claims) == len(REPLICATE["claims"]) == 6

    def draw(sd):
        return lambda rng: _tost_analyses(
            np.round(rng.normal(0.0, sd, TOST_N) * 872) / 872, rng.normal(-0.05, 0.02, TOST_N)
        )

    sd = float(TOST_POWER["sd"])
    _assert_tested(draw(sd), plan)
    power = _rate(draw(sd), plan, reps=500, want=(claims.SUPPORTED,))
    assert power >= float(TOST_POWER["power"]), power
    assert _rate(draw(2 * sd), plan, reps=500, seed=1, want=(claims.SUPPORTED,)) < power
