"""The claims (report/claims.py) decided across seeds from per-run `numbers`: one test per claim on
synthetic runs, n < 3 descriptive only, Holm over the claims decided together, the plateau rule, the
scratch learning-rate sweep compared at its best rate, the fallbacks labelled, and the report's
results section (what README includes) equal to what report.md says."""

from __future__ import annotations

import dataclasses
import json
import re

import numpy as np
import pytest
from helpers.claims import CASES, run_json, synthetic
from scipy import stats

from bertviz_landscape.analysis.measures import evidence
from bertviz_landscape.publish.report import claims
from bertviz_landscape.publish.report.claims import Options, Rule

RULE = Rule(alpha=0.05, min_runs=3, confidence=0.95, matched_loss_rtol=0.1, plateau_runs="exclude")
OPTS = Options(width_eps="0.1", min_epochs=5)

FAMILY = 6  # every registered claim of the demo plan (conf/plan/demo.yaml)


def test_the_cases_are_the_registered_family_at_its_metrics():
    from bertviz_landscape.publish.report import plan as plan_mod

    registered = plan_mod.preset("demo")["claims"]
    assert len(registered) == FAMILY
    assert {c: k for c, (_, k, _, _) in CASES.items()} == {c: r["metric"] for c, r in registered.items()}


def by_claim(analyses, rule=RULE):
    return {v.claim: v for v in claims.decide_all(analyses, rule, OPTS)}


@pytest.mark.parametrize("claim", list(CASES))
def test_each_claim_is_decided_across_seeds_with_the_exact_test_holm_and_its_effect(claim):
    """One test per claim: six seeds per arm, the planted direction -> supported; reversed ->
    contradicted; the sentence states the number, the test, n, the Holm-adjusted p, the effect and
    its interval, and they are the evidence module's numbers."""
    v = by_claim(synthetic())[claim]
    analysis, key, p, s = CASES[claim]
    test = "rank" if claim == "wider_optima" else "permutation"
    c = evidence.compare(p, s, RULE, test)
    ps = [
        evidence.compare(x[2], x[3], RULE, "rank" if k == "wider_optima" else "permutation").p
        for k, x in CASES.items()
    ]
    p_adj = evidence.holm(ps)[list(CASES).index(claim)]
    assert v.verdict == claims.SUPPORTED, v.sentence
    assert v.numbers["p_adjusted"] == pytest.approx(p_adj) and v.numbers["family"] == FAMILY
    assert c.p_min == pytest.approx(2 / 924) and c.p >= c.p_min
    assert v.numbers["comparison"]["difference"] == pytest.approx(np.median(np.subtract.outer(p, s)))
    assert v.numbers["comparison"]["mean_difference"] == pytest.approx(np.mean(p) - np.mean(s))
    assert c.welch_p == pytest.approx(stats.ttest_ind(p, s, equal_var=False).pvalue)
    for text in (
        "exact permutation test",
        "n = 6/6 runs",
        f"Holm over {FAMILY}",
        "Hodges–Lehmann shift",
        "Hedges' g",
    ):
        assert text in v.sentence, (text, v.sentence)
    assert f"{p_adj:.2g}" in v.sentence and f"{c.difference:.3g}" in v.sentence
    assert [r["value"] for r in v.numbers["per_run"]["pretrained"]] == p  # per-seed data for the figures
    rev = by_claim(synthetic(pre={claim: s}, scr={claim: p}))[claim]
    assert rev.verdict == claims.CONTRADICTED, rev.sentence


def test_fewer_than_three_seeds_per_arm_is_descriptive_only_never_supported():
    a = synthetic()
    for name in a:
        a[name] = [d for d in a[name] if d["runs"][0]["seed"] < 2]  # two seeds per arm
    for v in claims.decide_all(a, RULE, OPTS):
        assert v.verdict == claims.DESCRIPTIVE, v.sentence
        assert v.sentence.startswith("descriptive only (n = 2/2 runs")
    one = {k: [d for d in ds if d["runs"][0]["seed"] == 0] for k, ds in synthetic().items()}
    assert {v.verdict for v in claims.decide_all(one, RULE, OPTS)} == {claims.DESCRIPTIVE}


def test_within_the_noise_is_not_resolved_and_holm_counts_every_registered_claim():
    same = [0.50, 0.52, 0.51, 0.50, 0.52, 0.51]
    v = by_claim(
        synthetic(pre={"wider_optima": same}, scr={"wider_optima": [0.51, 0.49, 0.53, 0.5, 0.52, 0.5]})
    )
    assert (
        v["wider_optima"].verdict == claims.UNRESOLVED
        and "not resolved at α = 0.05" in v["wider_optima"].sentence
    )
    # drop the long-training runs: the family is still the six registered claims (the untestable one
    # enters with p = 1), not the five that happened to be testable (this pinned 4 before issue 27)
    a = synthetic()
    del a["longtrain"]
    v = by_claim(a)
    assert v["robust_to_overfitting"].verdict == claims.UNRESOLVED
    assert "no longtrain JSONs" in v["robust_to_overfitting"].sentence
    assert v["consistency"].numbers["family"] == FAMILY


def _plateau_seed(a, seed, init="scratch"):
    for name in a:
        for d in a[name]:
            if d["runs"][0]["init"] == init and d["runs"][0]["seed"] == seed:
                d["runs"][0] |= {"beat_baseline": False, "dev_metric": 0.509}
    return a


BLOCK = dataclasses.replace(RULE, plateau_runs="block")


def test_with_the_block_rule_a_claim_is_decided_only_where_both_arms_learned():
    a = _plateau_seed(synthetic(), 1)
    for v in claims.decide_all(a, BLOCK, OPTS):
        if v.claim == "easier_optimisation":  # its number is the optimisation outcome: every run stays
            assert v.verdict == claims.SUPPORTED, v.sentence
            assert "stay in the comparison" in v.sentence
            continue
        assert v.verdict == claims.UNRESOLVED, v.sentence
        assert (
            "1 of 6 from scratch runs (seed 1: accuracy 0.509 vs majority baseline 0.51) did not beat"
            in v.sentence
        )
        assert "enters Holm with p = 1" in v.sentence


def test_with_the_exclude_rule_a_plateau_run_leaves_the_comparison_and_is_named():
    # four scratch seeds, seed 1 on the plateau with a value that would flip the wider-optima claim
    a = synthetic(
        pre={c: v + [v[0]] for c, (_, _, v, _) in CASES.items()},
        scr={c: s + [s[1]] for c, (_, _, _, s) in CASES.items()},
    )
    for d in a["flatness"]:
        if d["runs"][0]["init"] == "scratch" and d["runs"][0]["seed"] == 1:
            d["numbers"]["invariant_width"] = 50.0  # the plateau's "width"
    _plateau_seed(a, 1)
    v = by_claim(a)
    wide = v["wider_optima"]
    assert wide.verdict == claims.SUPPORTED, wide.sentence
    assert "n = 7/6 runs" in wide.sentence
    assert "Excluded by the plan's rule (plateau_runs = exclude)" in wide.sentence
    assert "1 of 7 from scratch runs (seed 1: accuracy 0.509" in wide.sentence
    # the figure's per-seed data: the excluded run is kept, marked
    kept = [r["seed"] for r in wide.numbers["per_run"]["scratch"] if not r["excluded"]]
    assert kept == [0, 2, 3, 4, 5, 6] and wide.numbers["per_run"]["scratch"][-1]["excluded"]
    easy = v["easier_optimisation"]  # keeps every run
    assert "n = 7/7 runs" in easy.sentence and "stay in the comparison" in easy.sentence
    # fewer than min_runs learned: descriptive only, never supported
    for s in (2, 3, 4, 5):
        _plateau_seed(a, s)
    assert by_claim(a)["wider_optima"].verdict == claims.DESCRIPTIVE
    # no run of an arm learned: not resolved, saying so
    for s in (0, 6):
        _plateau_seed(a, s)
    v = by_claim(a)["consistency"]
    assert v.verdict == claims.UNRESOLVED and "no run of the from scratch arm beat" in v.sentence


def test_an_undefined_number_names_the_run():
    a = synthetic()
    d = next(d for d in a["consistency"] if d["runs"][0]["init"] == "scratch" and d["runs"][0]["seed"] == 2)
    d["numbers"]["regret_debiased"] = None
    v = by_claim(a)["consistency"]
    assert v.verdict == claims.UNRESOLVED
    assert "not measured: regret_debiased is undefined for scratch seed 2" in (v.sentence)


def test_the_scratch_arm_is_its_best_learning_rate_and_the_rates_are_named():
    a = synthetic()
    sweep = []
    for lr, dev, auc in ((1e-4, 0.70, 0.40), (3e-4, 0.78, 0.30), (1e-3, 0.60, 0.70)):
        sweep += [
            run_json("trajectory", "scratch", i, {"path_loss_auc": auc + 0.01 * i}, lr=lr, dev=dev)
            for i in range(3)
        ]
    a["trajectory"] = [d for d in a["trajectory"] if d["runs"][0]["init"] == "pretrained"] + sweep
    v = by_claim(a)["easier_optimisation"]
    assert (
        "learning rates tried 0.0001, 0.0003, 0.001; compared at the best by mean dev metric, 0.0003"
        in v.sentence
    )
    assert [r["value"] for r in v.numbers["per_run"]["scratch"]] == pytest.approx([0.30, 0.31, 0.32])
    assert v.numbers["rates"]["scratch"] == {"tried": [1e-4, 3e-4, 1e-3], "chosen": 3e-4}


def test_flatness_at_different_training_losses_is_flagged_and_fallbacks_are_labelled():
    a = synthetic()
    for d in a["flatness"]:
        if d["runs"][0]["init"] == "scratch":
            d["numbers"]["train_loss_theta1"] = 0.6
    v = by_claim(a)["wider_optima"]  # issue 27: no longer decided at unmatched loss (was flagged only)
    assert v.verdict == claims.NOT_COMPARABLE and "differ in training loss" in v.sentence
    # the registered matched-loss width of every pretrained run (partner in the comparison) decides
    for d in a["flatness"]:
        if d["runs"][0]["init"] == "pretrained":
            d["numbers"]["invariant_width_matched"] = d["numbers"]["invariant_width"]
    v = by_claim(a)["wider_optima"]
    assert v.verdict == claims.SUPPORTED and "ompared at matched training loss" in v.sentence
    for d in a["flatness"]:
        d["numbers"]["train_loss_theta1"] = 0.3
    # an invariant width at the end of its grid is a lower bound: ranked (Gehan), said so
    a["flatness"][6]["numbers"]["invariant_width_bounded"] = 0.0  # a scratch run
    v = by_claim(a)["wider_optima"]
    assert "lower bound; widen analysis.invariant.max" in v.sentence and "Gehan" in v.sentence
    # censored in both arms, every run: nothing can be ordered -> not comparable
    for d in a["flatness"]:
        d["numbers"]["invariant_width_bounded"] = 0.0
    assert by_claim(a)["wider_optima"].verdict == claims.NOT_COMPARABLE
    for d in a["flatness"]:
        d["numbers"]["invariant_width_bounded"] = 1.0
    # older JSONs without `numbers`: the ‖δ1‖-unit width from the summary decides, labelled fallback
    for d in a["flatness"]:
        w = d["numbers"]["invariant_width"]
        d["numbers"] = {}
        d["summary"] = {"width_x_0.1": {"mean": w * 3, "std": 0.0, "n": 1}}
        d["per_run"] = [{"width": {"x": {"0.1": {"bounded": True}}}, "noise": {"center_value": 0.3}}]
    v = by_claim(a)["wider_optima"]
    assert (
        v.numbers["measure"] == "width_delta1" and "fallback: not reparameterisation-invariant" in v.sentence
    )
    # not the registered metric: shown, never decided (issue 27: was supported)
    assert v.verdict == claims.UNRESOLVED and "registered metric invariant_width" in v.sentence


def test_the_layers_fallback_is_the_depth_trend_of_single_layer_rollbacks():
    rb = [{"kind": "none", "layers": [], "dev_error": 0.2}] + [
        {"kind": "single", "layers": [f"layer.{i}"], "dev_error": 0.2 + 0.01 * i} for i in range(4)
    ]
    data = {"runs": [{"task": "sst2", "init": "pretrained", "seed": 0}], "per_run": [{"rollback": rb}]}
    (rec,) = claims.run_records("layers", [data], OPTS)
    assert rec.numbers["rollback_depth_trend"] == pytest.approx(1.0)


def test_the_results_section_readme_includes_is_what_the_report_says(tmp_path):
    """write_report writes results.md (and its copy for README); report.md holds it verbatim, with
    every verdict sentence and the per-seed table."""
    from bertviz_landscape.contracts.resultsdir import ResultsDir
    from bertviz_landscape.publish.publisher import write_report

    root = tmp_path / "res"
    (root / "analysis").mkdir(parents=True)
    for name, datas in synthetic().items():
        for d in datas:
            r = d["runs"][0]
            (root / "analysis" / f"{name}_{r['task']}_{r['init']}_seed{r['seed']}.json").write_text(
                json.dumps(d)
            )
    (root / "evidence.json").write_text(
        json.dumps(
            {
                "alpha": 0.05,
                "min_runs": 3,
                "confidence": 0.95,
                "matched_loss_rtol": 0.1,
                "width_eps": 0.1,
                "min_epochs": 5,
            }
        )
    )
    (root / "figures").mkdir()
    (root / "figures" / "figures.json").write_text(json.dumps({"figures": []}))
    copy = tmp_path / "docs" / "results" / "demo.md"
    write_report(root, None, copy)
    section = ResultsDir(root).results_md.read_text()
    images = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", section)
    copied = re.findall(r"!\[[^\]]*\]\(([^)]+)\)", copy.read_text())
    assert images and len(copied) == len(images)  # the claims' figures, beside the copy
    assert all((root / i).is_file() for i in images) and all((copy.parent / c).is_file() for c in copied)
    assert all((copy.parent / c).read_bytes() == (root / i).read_bytes() for i, c in zip(images, copied))
    assert copy.read_text().replace("figures/demo/", "figures/claims/") == section  # else the same text
    md = (root / "report.md").read_text()
    assert section.strip() in md
    for v in claims.decide_all(synthetic()):
        assert f"**{v.title}** ({v.task}): {v.sentence}" in section
    assert section.index("| claim | verdict | registered metric |") < section.index("<details")
    assert "exploratory** — no analysis plan was frozen" in section  # only an evidence.json
    assert "| | pretrained seed 0 | pretrained seed 1 | pretrained seed 2 | pretrained seed 3 |" in section
    data = json.loads((root / "claims.json").read_text())
    wider = next(v for v in data["verdicts"] if v["claim"] == "wider_optima")
    assert [r["value"] for r in wider["per_run"]["scratch"]] == CASES["wider_optima"][3]
    assert wider["verdict"] == "supported" and wider["p_adjusted"] < 0.05
    # the per-arm rows of the registered metrics (consistency's: regret_debiased since issue 28)
    regret = "| dev-error regret of the training-loss minimum (bootstrap bias-corrected) |"
    assert f"{regret} 0.0055 ± 0.00345 (n = 6, 95% CI [" in section
    assert "| loss barrier to the next seed's θ1 (dev) | 0.01667 ± 0.0108 (n = 6, 95% CI [" in section


def test_a_over_a_through_the_claims_decides_no_more_than_alpha_of_the_time():
    """Both arms of every claim drawn from one distribution, 300 seeded repetitions of a whole report
    (six claims, Holm together): a report with any supported or contradicted claim at most α of the
    time (within 3 binomial standard errors)."""
    rng = np.random.default_rng(2024)
    reps, any_decided = 300, 0
    for _ in range(reps):
        draws = {c: (list(rng.normal(0.5, 0.1, 3)), list(rng.normal(0.5, 0.1, 3))) for c in CASES}
        verdicts = claims.decide_all(
            synthetic(pre={c: d[0] for c, d in draws.items()}, scr={c: d[1] for c, d in draws.items()}),
            RULE,
            OPTS,
        )
        any_decided += any(v.verdict in (claims.SUPPORTED, claims.CONTRADICTED) for v in verdicts)
    assert any_decided / reps <= RULE.alpha + 3 * np.sqrt(RULE.alpha * (1 - RULE.alpha) / reps)
