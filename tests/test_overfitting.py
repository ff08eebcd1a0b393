"""Robustness to overfitting, as registered for the confirmatory replicate (issue 28 item 2): the
per-run statistic (longtrain's dev_last_minus_early: dev accuracy at the last epoch minus at the
plan's fixed early epoch, its standard errors from the dev set), the equivalence test that decides
it (evidence.equivalence: TOST within the plan's margin, the pretrained runs tested, the from-scratch
runs the comparison), and the claim's sentence through the report's claims layer — while the demo's
plan, whose runs train one epoch, keeps its verdict text word for word.

The calibration of the TOST on null data (at the margin, and its power at a true zero change) is in
tests/test_calibration.py, through the same claims layer."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
import yaml
from scipy import stats

from bertviz_landscape.analysis.longtrain import longtrain
from bertviz_landscape.analysis.measures import evidence
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.publish.report import claims
from bertviz_landscape.publish.report import plan as plan_mod

REPLICATE = plan_mod.preset("replicate")
CLAIM = "robust_to_overfitting"


def _run_dir(
    path: Path, accuracy: list[float], loss: list[float] | None = None, n_dev: int = 872, preds=None
):
    """A finished run directory as longtrain reads one: run.json, metrics.json with its per-epoch dev
    records (1-based epochs), θ0 and θ1; `preds` (epoch → per-example correctness) writes
    logs/dev_predictions.jsonl."""
    rd = RunDir(path)
    for d, w in ((rd.theta0, b"theta0"), (rd.theta1, path.name.encode())):
        d.mkdir(parents=True)
        (d / "model.safetensors").write_bytes(w)
    loss = loss or [0.3 + 0.01 * e for e in range(len(accuracy))]
    rows = [
        {"epoch": e + 1, "step": 64 * (e + 1), "val/loss": lo, "val/accuracy": a}
        for e, (a, lo) in enumerate(zip(accuracy, loss))
    ]
    rd.metrics_json.write_text(
        json.dumps(
            {
                "task": "sst2",
                "init": "pretrained",
                "primary_metric": "accuracy",
                "dev": {"val/accuracy": accuracy[-1], "val/loss": loss[-1]},
                "majority_baseline": {"accuracy": 0.509},
                "dev_examples": n_dev,
                "dev_per_epoch": rows,
            }
        )
    )
    (path / "run.json").write_text(
        json.dumps({"task": "sst2", "init": "pretrained", "seed": 0, "model": "m"})
    )
    if preds is not None:
        (path / "logs").mkdir(exist_ok=True)
        labels = [1] * n_dev
        lines = [
            json.dumps(
                {
                    "epoch": e,
                    "step": 64 * e,
                    "predictions": [int(c) for c in ok],
                    "labels": labels,
                    "losses": [],
                }
            )
            for e, ok in sorted(preds.items())
        ]
        (path / "logs" / "dev_predictions.jsonl").write_text("\n".join(lines) + "\n")
    return path


# --- the per-run statistic ------------------------------------------------------------------------
def test_last_minus_early_is_the_last_epoch_minus_the_fixed_early_one_never_the_best(tmp_path):
    """Epoch 3 at 0.85, a best of 0.90 at epoch 7, the last (20) at 0.84: the statistic is
    0.84 − 0.85 (not 0.84 − 0.90); the dev loss beside it likewise; its unpaired binomial s.e. from
    the dev set's 872 examples; and with the per-example predictions, the paired one by hand."""
    acc = [0.80, 0.83, 0.85, 0.86, 0.87, 0.88, 0.90] + [0.86] * 12 + [0.84]
    loss = [0.5 - 0.01 * e for e in range(7)] + [0.5 + 0.02 * e for e in range(13)]
    n = 872
    early = np.zeros(n, bool)
    early[: round(0.85 * n)] = True  # 741 right at epoch 3
    last = early.copy()
    last[:20] = False  # 20 lost ...
    last[741:752] = True  # ... 11 gained: 732 right at the last epoch
    run = _run_dir(tmp_path / "r", acc, loss, n, preds={3: early, 20: last})
    nums = longtrain([run])["per_run"][0]["numbers"]
    assert nums["dev_last_minus_early"] == pytest.approx(0.84 - 0.85)
    assert nums["dev_loss_last_minus_early"] == pytest.approx(loss[-1] - loss[2])
    assert nums["early_epoch"] == 3.0
    se = math.sqrt(0.85 * 0.15 / n + 0.84 * 0.16 / n)
    assert nums["dev_last_minus_early_se"] == pytest.approx(se)
    diffs = last.astype(float) - early.astype(float)  # per-example: the paired s.e. (ddof 0)
    assert nums["dev_last_minus_early_se_paired"] == pytest.approx(diffs.std() / math.sqrt(n))
    assert nums["dev_last_minus_early_se_paired"] < nums["dev_last_minus_early_se"]


def test_last_minus_early_is_null_without_that_epoch_or_training_past_it(tmp_path):
    """One epoch (the demo), or a run whose last epoch is the early one: no statistic (null), and the
    early epoch is what the analysis was asked for (analysis.early_epoch)."""
    one = longtrain([_run_dir(tmp_path / "one", [0.8])])["per_run"][0]["numbers"]
    assert one["dev_last_minus_early"] is None and one["dev_loss_last_minus_early"] is None
    three = longtrain([_run_dir(tmp_path / "three", [0.8, 0.82, 0.83])])["per_run"][0]["numbers"]
    assert three["dev_last_minus_early"] is None
    five = longtrain([_run_dir(tmp_path / "five", [0.8, 0.82, 0.83, 0.84, 0.81])], early_epoch=2)
    assert five["per_run"][0]["numbers"]["dev_last_minus_early"] == pytest.approx(0.81 - 0.82)
    assert five["per_run"][0]["numbers"]["early_epoch"] == 2.0
    assert five["inputs"]["early_epoch"] == 2


def test_the_analysis_config_and_the_plan_fix_the_same_early_epoch():
    conf = yaml.safe_load((Path(plan_mod.CONF_DIR) / "analysis" / "longtrain.yaml").read_text())
    assert conf["early_epoch"] == REPLICATE["claims"][CLAIM]["early_epoch"] == 3


# --- the test ---------------------------------------------------------------------------------------
def test_tost_is_two_one_sided_t_tests_against_the_margins():
    """Against scipy's one-sample t-tests: p_lower of H0 μ ≤ −m, p_upper of H0 μ ≥ +m, p their max."""
    x = [0.004, -0.006, 0.001, 0.009, -0.003]
    m = 0.02
    p, lo, hi = evidence.tost_pvalues(x, m)
    assert lo == pytest.approx(stats.ttest_1samp(x, -m, alternative="greater").pvalue)
    assert hi == pytest.approx(stats.ttest_1samp(x, m, alternative="less").pvalue)
    assert p == max(lo, hi)
    # no spread: nothing to test against; fewer than 2 runs likewise
    assert evidence.tost_pvalues([0.0] * 5, m) == (1.0, 1.0, 1.0)
    assert evidence.tost_pvalues([0.0], m) == (1.0, 1.0, 1.0)
    with pytest.raises(ValueError, match="margin"):
        evidence.tost_pvalues(x, 0.0)


def test_equivalence_tests_the_pretrained_arm_and_describes_the_scratch_one():
    """The TOST p is the pretrained arm's; the from-scratch arm is described (its own TOST p, the
    difference of means) and changing it leaves the decision's p unchanged."""
    rule = claims.Rule(0.05, 3, 0.95, 0.1, "exclude")
    pre = [0.004, -0.006, 0.001, 0.009, -0.003]
    c1 = evidence.equivalence(pre, [-0.05, -0.07, -0.04, -0.06, -0.08], rule, 0.02)
    c2 = evidence.equivalence(pre, [0.0, 0.01, -0.01, 0.02, 0.005], rule, 0.02)
    assert c1.p == c2.p == evidence.tost_pvalues(pre, 0.02)[0]
    assert c1.test == "tost" and c1.margin == 0.02 and c1.direction == 1
    assert c1.difference == pytest.approx(np.mean(pre))
    half = stats.t.ppf(0.95, 4) * np.std(pre, ddof=1) / math.sqrt(5)  # the (1 − 2α) = 90% interval
    assert (c1.ci_low, c1.ci_high) == pytest.approx((np.mean(pre) - half, np.mean(pre) + half))
    assert c1.b_p == pytest.approx(evidence.tost_pvalues([-0.05, -0.07, -0.04, -0.06, -0.08], 0.02)[0])
    assert c1.mean_difference == pytest.approx(np.mean(pre) + 0.06)
    with pytest.raises(ValueError, match="margin"):
        evidence.compare(pre, pre, rule, "tost")


# --- the plan ---------------------------------------------------------------------------------------
def test_the_replicate_plan_registers_the_tost_with_its_margin_and_early_epoch():
    plan = plan_mod.plan_from(REPLICATE)
    reg = plan.claims[CLAIM]
    assert (reg.metric, reg.test, reg.margin, reg.early_epoch, reg.direction) == (
        "dev_last_minus_early",
        "tost",
        0.02,
        3,
        0,
    )
    assert plan.opts.min_epochs == 20  # experiment=overfit_cpu's epochs
    # the demo plan keeps its metric (its runs train one epoch: they cannot overfit)
    assert plan_mod.preset("demo")["claims"][CLAIM]["metric"] == "dev_slope_second_half"


@pytest.mark.parametrize(
    "change, message",
    [
        ({"margin": None}, "has no 'margin'"),
        ({"margin": -0.02}, "must be positive"),
        ({"margin": "wide"}, "must be a number"),
        ({"direction": 1}, "has no direction"),
        ({"early_epoch": 0}, "early_epoch must be an epoch"),
    ],
)
def test_a_tost_registration_without_a_valid_margin_or_with_a_direction_is_refused(change, message):
    reg = dict(REPLICATE["claims"][CLAIM]) | change
    if change.get("margin", 0) is None:
        reg.pop("margin")
    doc = dict(REPLICATE, claims={CLAIM: reg})
    with pytest.raises(ValueError, match=message):
        plan_mod.plan_from(doc)


# --- the claim, through the claims layer -------------------------------------------------------------
def _longtrain_json(init: str, seed: int, d: float | None, early: float = 3.0, epochs: float = 20.0):
    nums = {
        "dev_last_minus_early": d,
        "dev_loss_last_minus_early": None if d is None else 0.1 - d,
        "early_epoch": early,
        "num_epochs": epochs,
        "dev_slope_second_half": 0.0 if epochs >= 6 else None,
        "best_minus_last_dev": 0.01,
        "dev_loss_last": 0.4,
    }
    return {
        "analysis": "longtrain",
        "format": "bertviz-analysis/1",
        "runs": [
            {
                "run": f"/runs/sst2_{init}_seed{seed}",
                "task": "sst2",
                "init": init,
                "seed": seed,
                "beat_baseline": True,
                "dev_metric": 0.85,
                "majority_baseline": 0.509,
                "primary_metric": "accuracy",
            }
        ],
        "per_run": [{"dev_metric_per_epoch": [0.85] * int(epochs)}],
        "summary": {},
        "numbers": nums,
    }


def _decide(pre, scr, plan_doc=REPLICATE, **kw):
    analyses = {
        "longtrain": [_longtrain_json("pretrained", 5 + i, d, **kw) for i, d in enumerate(pre)]
        + [_longtrain_json("scratch", 5 + i, d, **kw) for i, d in enumerate(scr)]
    }
    verdicts = claims.decide_all(analyses, plan=plan_mod.plan_from(plan_doc))
    return next(v for v in verdicts if v.claim == CLAIM)


PRE_FLAT = [0.002, -0.003, 0.001, 0.0, -0.001]  # within ±0.02 by far
SCR_DROP = [-0.06, -0.04, -0.07, -0.05, -0.08]


def test_pretrained_runs_within_the_margin_are_supported_after_holm_over_the_family():
    v = _decide(PRE_FLAT, SCR_DROP)
    c = v.numbers["comparison"]
    assert v.verdict == claims.SUPPORTED, v.sentence
    assert c["test"] == "tost" and c["p"] == pytest.approx(evidence.tost_pvalues(PRE_FLAT, 0.02)[0])
    assert v.numbers["in_family"] is True  # its figure shows this Holm p as the deciding number
    family = len(REPLICATE["claims"])
    assert v.numbers["family"] == family and v.numbers["p_adjusted"] == pytest.approx(
        min(1.0, family * c["p"])
    )
    assert "by less than ±0.02 from epoch 3 to the last (equivalence, TOST)" in v.sentence
    assert "the from-scratch runs are the comparison, not decided on" in v.sentence
    assert v.numbers["row"]["p"].endswith("(TOST; Holm " + claims._p(v.numbers["p_adjusted"]) + ")")
    assert "margin ±0.02" in v.numbers["row"]["difference"]


def test_supported_needs_the_holm_adjusted_tost_p_below_alpha_not_the_raw_one():
    """A TOST p between α/6 and α: equivalence at α alone, but not after Holm over the six registered
    claims — not resolved."""
    pre = [0.015, -0.005, 0.012, -0.002, 0.01]
    p = evidence.tost_pvalues(pre, 0.02)[0]
    assert 0.05 / 6 < p < 0.05
    v = _decide(pre, SCR_DROP)
    assert v.verdict == claims.UNRESOLVED and v.numbers["p_adjusted"] == pytest.approx(6 * p)


def test_a_drop_beyond_the_margin_is_not_resolved_never_supported_and_says_so():
    v = _decide([-0.05, -0.04, -0.06, -0.045, -0.055], SCR_DROP)
    assert v.verdict == claims.UNRESOLVED
    assert "lost more than 0.02" in v.sentence and "a TOST decides equivalence only" in v.sentence


def test_runs_too_noisy_for_the_margin_are_not_resolved():
    v = _decide([0.03, -0.025, 0.01, -0.03, 0.02], SCR_DROP)
    assert v.verdict == claims.UNRESOLVED and "equivalence within ±0.02 not shown" in v.sentence


def test_runs_measured_from_another_early_epoch_leave_the_claim_not_resolved():
    v = _decide(PRE_FLAT, SCR_DROP, early=5.0)
    assert v.verdict == claims.UNRESOLVED
    assert "the plan registers dev_last_minus_early from epoch 3" in v.sentence
    assert "measured from epoch 5" in v.sentence


def test_short_runs_under_the_replicate_plan_are_not_resolved_by_the_epoch_rule():
    v = _decide([None] * 5, [None] * 5, epochs=1.0)
    assert v.verdict == claims.UNRESOLVED
    assert "only 1 epoch — overfitting needs long training (≥ 20" in v.sentence
    # the claims table's "registered metric" column names the registered metric, not a fallback
    # measure the runs happen to have (best_minus_last_dev here)
    assert v.numbers["row"]["metric"].startswith(
        "dev metric at the last epoch minus at the plan's early epoch"
    )
    assert not v.numbers.get("in_family")


def test_the_demo_plan_keeps_its_verdict_text_for_one_epoch_runs():
    """A results directory of the demo (one epoch per run, no long-training runs): the claim's row and
    sentence are word for word what they were before the replicate registered the TOST (captured from
    commit 0dc79b4's claims layer on these numbers)."""
    nums = {
        "dev_slope_second_half": None,
        "best_minus_last_dev": 0.0,
        "dev_loss_last": 0.4,
        "num_epochs": 1.0,
        "dev_last_minus_early": None,
        "early_epoch": 3.0,
    }
    analyses = {"longtrain": []}
    for init in ("pretrained", "scratch"):
        for s in range(3):
            j = _longtrain_json(init, s, None, epochs=1.0)
            j["numbers"] = nums | {"best_minus_last_dev": 0.001 * s, "dev_loss_last": 0.4 + 0.01 * s}
            j["per_run"] = [{"dev_metric_per_epoch": [0.8]}]
            j["summary"] = {"drop_from_best": {"mean": 0.0, "std": 0.0, "n": 1}}
            analyses["longtrain"].append(j)
    v = next(v for v in claims.decide_all(analyses) if v.claim == CLAIM)
    assert v.verdict == claims.UNRESOLVED
    assert v.sentence.startswith(
        "not resolved: only 1 epoch — overfitting needs long training (≥ 5; bertviz-train "
        "experiment=overfit) — drop of the dev metric from the best epoch to the last: "
        "pretrained 0.001 ± 0.001 (n = 3, 95% "
        "bootstrap CI [0, 0.002]), from scratch 0.001 ± 0.001 (n = 3, 95% bootstrap CI [0, 0.002]); n = 3/3 "
        "runs, p = 1 (exact permutation test of the difference of means (∧ Welch); not decided, enters Holm "
        "with p = 1); Hodges–Lehmann shift pretrained − scratch 0 [-0.002, 0.002] (90% exact)"
    ), v.sentence
    assert v.numbers["row"] == {
        "claim": "Fine-tuning is robust to overfitting",
        "task": "sst2",
        "verdict": "not resolved",
        "metric": "drop of the dev metric from the best epoch to the last",
        "caveat": "only 1 epoch — overfitting needs long training (≥ 5; bertviz-train experiment=overfit)",
        "pretrained": "0.001 ± 0.001",
        "scratch": "0.001 ± 0.001",
        "difference": "0 [-0.002, 0.002] (90% exact)",
        "p": "1 (perm. ∧ Welch; Holm –)",
        "n": "3/3",
    }


def test_the_overfit_cpu_preset_composes_as_registered():
    """experiment=overfit_cpu: MiniLM on SST-2, 1,024 examples, 20 epochs (the plan's min_epochs), the
    full dev set every epoch with per-example predictions, sparse snapshots, no per-epoch θ."""
    from bertviz_landscape.cli.compose import compose

    cfg = compose("train", ["experiment=overfit_cpu", "init=scratch"])
    assert cfg.task.name == "sst2" and cfg.model.name == "minilm"
    assert cfg.data.max_train_samples == 1024 and cfg.data.max_eval_samples is None
    assert cfg.trainer.max_epochs == REPLICATE["min_epochs"] == 20
    assert cfg.trainer.max_epochs > REPLICATE["claims"][CLAIM]["early_epoch"]
    assert cfg.callbacks.epochs.dev_predictions and not cfg.callbacks.epochs.keep_weights
    steps_per_epoch = cfg.data.max_train_samples // cfg.data.batch_size
    assert cfg.callbacks.snapshots.every_n_steps >= steps_per_epoch  # at most one snapshot per epoch
