"""The paper's claims, each decided across runs (seeds) by bertviz_landscape.analysis.evidence.

Each claim is declared by the analysis whose numbers decide it (its ``ClaimSpec`` in the
analysis module's ``SPEC``, analysis/spec.py); this module decides them all, in the paper's order
(analysis.registry.claims()).

`analyses` maps an analysis name to its JSONs (format bertviz-analysis/1; one JSON per run, each
with its per-run ``numbers``, analysis/common.py). For every task, the runs of each arm (pretrained,
from scratch) give one number each; the two arms are compared by Welch's two-sided t-test with the
run as the unit, the effect is the difference of means (pretrained − scratch) with its 95% Welch
interval and Hedges' g with its interval, and the p-values of every claim decided in one report
get Holm's correction together (evidence.py says why). With fewer than ``rule.min_runs`` runs in
an arm a claim is "descriptive only (n = …)". A claim is decided only where every run of both arms
beat its majority baseline (analysis.common.baseline_verdict: accuracy more than 2 binomial
standard errors above the majority's) — otherwise "not resolved", naming the runs that did not
(their landscape is the plateau's, not a learned optimum's). Where an arm holds runs of several
learning rates (the replicate preset's scratch sweep), the arm is its best rate by mean dev metric
and the sentence names the rates tried.

Each claim reads the first of its measures that every run of both arms has; a measure marked
*fallback* is the older per-run quantity used until the analysis writes the invariant one (an
older JSON's numbers come from its analysis's ``legacy`` reader), and the sentence labels it so.
A width whose interval reached the end of its grid (``<key>_bounded`` = 0) is a lower bound: it
cannot lose the way it cannot be shown (the measure's ``widen`` names the override). The named
``checks`` a claim applies:

matched_loss          flagged when the arms' mean training losses at θ1 (``train_loss_theta1``)
                      differ by more than ``rule.matched_loss_rtol`` (with the pretrained runs'
                      ``matched_loss_step``s when measured).
min_epochs            not resolved when a run has fewer than ``min_epochs`` epochs (``epochs``).
threshold_reached     quotes how many runs of each arm reached the path-loss threshold
                      (``steps_to_threshold``) and their median steps.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from omegaconf import OmegaConf

from bertviz_landscape.analysis import evidence, registry
from bertviz_landscape.analysis.evidence import (
    CONTRADICTED,
    DESCRIPTIVE,
    SUPPORTED,
    UNRESOLVED,
    Options,
    Rule,
)
from bertviz_landscape.analysis.spec import ClaimSpec, Measure, finite
from bertviz_landscape.config import CONF_DIR
from bertviz_landscape.errors import BadInput

__all__ = [
    "CLAIMS",
    "CONTRADICTED",
    "DESCRIPTIVE",
    "SUPPORTED",
    "UNRESOLVED",
    "ClaimSpec",
    "Measure",
    "Options",
    "Rule",
    "Verdict",
    "decide_all",
]


class _Titles(Mapping):
    """claim -> its title, of every registered analysis's claims (read when asked: an analysis
    registered later is in it)."""

    def _all(self) -> dict[str, str]:
        return {c.claim: c.title for c in registry.claims()}

    def __getitem__(self, claim: str) -> str:
        return self._all()[claim]

    def __iter__(self):
        return iter(self._all())

    def __len__(self) -> int:
        return len(self._all())


CLAIMS: Mapping[str, str] = _Titles()
ARMS = ("pretrained", "scratch")


@dataclass
class Verdict:
    claim: str
    task: str
    verdict: str
    sentence: str
    numbers: dict = field(default_factory=dict)

    @property
    def title(self) -> str:
        return CLAIMS[self.claim]


# --- per-run records ------------------------------------------------------------------------
@dataclass
class RunRecord:
    """One run's identity, its baseline verdict and its `numbers` (with the fallbacks filled in)."""

    task: str
    init: str
    seed: int | None
    run: str | None
    lr: float | None
    beat: bool | None
    dev_metric: float | None
    baseline: float | None
    metric: str
    numbers: dict
    source: str | None = None  # the analysis JSON its numbers came from

    @property
    def label(self) -> str:
        lr = "" if self.lr is None else f" lr {self.lr:g}"
        return f"{self.init} seed {self.seed}{lr}"  # the per-seed table names the rate only in a sweep


_num = finite


def fallback_numbers(analysis: str, data: dict, per_run: dict, opts: Options) -> dict:
    """The per-run quantities an older analysis JSON holds, under the contract's names (its
    analysis's ``legacy`` reader); a JSON's own ``numbers`` take precedence over these."""
    try:
        legacy = registry.get(analysis).legacy
    except BadInput:  # a JSON of an analysis this version does not know: its own numbers only
        return {}
    out = legacy(data, per_run, opts) if legacy else {}
    return {k: v for k, v in out.items() if v is not None}


def run_records(analysis: str, datas: list[dict], opts: Options) -> list[RunRecord]:
    """One record per run of the analysis JSONs: its ``per_run[i]["numbers"]`` (else, for a one-run
    JSON, the top-level ``numbers``), over the fallbacks from a one-run JSON's summary."""
    out, seen = [], set()
    for data in datas or []:
        runs = data.get("runs") or []
        per = data.get("per_run") or []
        for i, run in enumerate(runs):
            pr = per[i] if i < len(per) else {}
            numbers = fallback_numbers(analysis, data, pr, opts) if len(runs) == 1 else {}
            own = pr.get("numbers") if isinstance(pr.get("numbers"), dict) else None
            if own is None and len(runs) == 1:
                own = data.get("numbers")
            # null stays: "measured, none" (e.g. steps_to_threshold of a run that never reached it)
            numbers |= {k: _num(v) for k, v in (own or {}).items()}
            seed = run.get("seed")
            rec = RunRecord(
                str(run.get("task")),
                str(run.get("init")),
                None if seed is None else int(seed),
                run.get("run"),
                _num(run.get("lr")),
                run.get("beat_baseline"),
                _num(run.get("dev_metric")),
                _num(run.get("majority_baseline")),
                str(run.get("primary_metric") or "metric"),
                numbers,
                data.get("_path"),
            )
            ident = (rec.task, rec.init, rec.seed, rec.lr, rec.run)
            if ident not in seen:
                seen.add(ident)
                out.append(rec)
    return out


def best_rate(records: list[RunRecord]) -> tuple[list[RunRecord], list[float], float | None]:
    """An arm's runs at its best learning rate by mean dev metric (all runs when one rate), the
    rates tried and the one chosen."""
    by_lr: dict = defaultdict(list)
    for r in records:
        by_lr[r.lr].append(r)
    rates = sorted(lr for lr in by_lr if lr is not None)
    if len(by_lr) <= 1:
        return records, rates, (rates[0] if rates else None)

    def score(lr):
        vals = [r.dev_metric for r in by_lr[lr] if r.dev_metric is not None]
        return float(np.mean(vals)) if vals else -math.inf

    best = max(by_lr, key=score)
    return by_lr[best], rates, best


@dataclass
class Assessment:
    """A claim of one task before Holm's correction: what is compared, or why nothing is."""

    spec: ClaimSpec
    task: str
    arms: dict = field(default_factory=dict)  # init -> [RunRecord] (best rate)
    measure: Measure | None = None
    comparison: evidence.Comparison | None = None
    blocked: str | None = None  # why no decision is made (missing numbers, plateau, too short)
    notes: list[str] = field(default_factory=list)
    rates: dict = field(default_factory=dict)  # init -> (rates tried, chosen)
    unbounded: dict | None = None  # init -> a lower-bound width in some run (measures with `widen`)

    @property
    def testable(self) -> bool:
        return self.blocked is None and self.comparison is not None and math.isfinite(self.comparison.p)


def _g(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}g}"


def _arm_text(agg: evidence.Aggregate, confidence: float) -> str:
    if agg.n == 0:
        return "not measured"
    if agg.n == 1:
        return f"{_g(agg.mean)} (n = 1)"
    ci = f"{confidence:.0%} CI [{_g(agg.ci_low)}, {_g(agg.ci_high)}]"
    return f"{_g(agg.mean)} ± {_g(agg.std, 2)} (n = {agg.n}, {ci})"


def assess(spec: ClaimSpec, records: list[RunRecord], task: str, rule: Rule, opts: Options) -> Assessment:
    a = Assessment(spec, task)
    mine = [r for r in records if r.task == task]
    for init in ARMS:
        runs = [r for r in mine if r.init == init]
        chosen, rates, best = best_rate(runs)
        a.arms[init] = chosen
        if len(rates) > 1:
            a.rates[init] = (rates, best)
            a.notes.append(
                f"{'from-scratch' if init == 'scratch' else init} learning rates tried "
                f"{', '.join(f'{x:g}' for x in rates)}; compared at the best by mean dev metric, {best:g}"
            )
    if not all(a.arms[i] for i in ARMS):
        missing = [i for i in ARMS if not a.arms[i]]
        a.blocked = f"no {spec.analysis} JSONs for the {' and '.join(missing)} runs"
        return a
    for m in spec.measures:
        if all(r.numbers.get(m.key) is not None for i in ARMS for r in a.arms[i]):
            a.measure = m
            break
    if a.measure is None:
        a.blocked = (
            f"not measured: no run of both arms has any of {', '.join(m.key for m in spec.measures)} "
            f"in its {spec.analysis} numbers"
        )
        return a
    vals = {i: [r.numbers[a.measure.key] for r in a.arms[i]] for i in ARMS}
    a.comparison = evidence.welch(vals["pretrained"], vals["scratch"], rule.confidence)
    failed = {i: [r for r in a.arms[i] if r.beat is False] for i in ARMS}
    if any(failed.values()):
        parts = []
        for i, runs in failed.items():
            if runs:
                lr = f" at lr {runs[0].lr:g}" if i in a.rates and runs[0].lr is not None else ""
                metric = runs[0].metric
                parts.append(
                    f"{len(runs)} of {len(a.arms[i])} {_arm_name(i)} runs{lr} (seed "
                    + ", ".join(str(r.seed) for r in runs)
                    + f": {metric} "
                    + ", ".join(_g(r.dev_metric) for r in runs)
                    + " vs majority baseline "
                    + ", ".join(dict.fromkeys(_g(r.baseline) for r in runs))
                    + ")"
                )
        a.blocked = (
            " and ".join(parts)
            + " did not beat their majority baseline — a claim is decided only where both arms learned"
        )
    for check in spec.checks:
        if check not in CHECKS:
            raise ValueError(
                f"claim {spec.claim!r} ({spec.analysis}): unknown check {check!r} "
                f"(known: {', '.join(CHECKS)})"
            )
        CHECKS[check](a, rule, opts)
    _lower_bound(a)
    return a


def _min_epochs(a: Assessment, rule: Rule, opts: Options) -> None:
    """Long training shorter than `opts.min_epochs` cannot show overfitting: not resolved."""
    epochs = [r.numbers.get("epochs") for i in ARMS for r in a.arms[i] if r.numbers.get("epochs") is not None]
    if epochs and min(epochs) < opts.min_epochs:
        a.blocked = (
            f"only {int(min(epochs))} epoch{'s' if min(epochs) != 1 else ''} — overfitting needs long "
            f"training (≥ {opts.min_epochs}; bertviz-train experiment=overfit)"
        )


def _threshold_reached(a: Assessment, rule: Rule, opts: Options) -> None:
    """How many runs of each arm reached the path-loss threshold, and their median steps."""
    reached = {
        i: [r.numbers.get("steps_to_threshold") for r in a.arms[i] if "steps_to_threshold" in r.numbers]
        for i in ARMS
    }
    if any(reached.values()):
        a.notes.append(
            "runs reaching the configured path-loss threshold: "
            + ", ".join(
                f"{i} {sum(x is not None for x in reached[i])}/{len(reached[i])}"
                + (
                    f" (median {np.median([x for x in reached[i] if x is not None]):.0f} steps)"
                    if any(x is not None for x in reached[i])
                    else ""
                )
                for i in ARMS
            )
        )


def _matched_loss(a: Assessment, rule: Rule, opts: Options) -> None:
    """Flagged when the arms' mean training losses at θ1 are more than rule.matched_loss_rtol apart."""
    loss = {i: [r.numbers.get("train_loss_theta1") for r in a.arms[i]] for i in ARMS}
    if all(all(v is not None for v in loss[i]) for i in ARMS):
        mp, ms = (float(np.mean(loss[i])) for i in ARMS)
        if abs(mp - ms) > rule.matched_loss_rtol * max(abs(mp), abs(ms), 1e-12):
            matched = [r.numbers.get("matched_loss_step") for r in a.arms["pretrained"]]
            a.notes.append(
                f"flagged: compared at different training losses (mean J(θ1) pretrained {mp:.3g}, from "
                f"scratch {ms:.3g}; more than {rule.matched_loss_rtol:.0%} apart)"
                + (
                    f"; the pretrained snapshots at matched loss: steps {', '.join(_g(x) for x in matched)}"
                    if any(x is not None for x in matched)
                    else ""
                )
            )
    else:
        a.notes.append("training losses at θ1 not measured for every run: matched loss not checked")


def _lower_bound(a: Assessment) -> None:
    """A width measure (one with `widen`) whose interval reached its grid's end in some run
    (``<key>_bounded`` = 0.0) is a lower bound there: noted, and it can only win (`finish`)."""
    if a.measure is None or a.measure.widen is None:
        return
    flag = f"{a.measure.key}_bounded"
    a.unbounded = {i: any(r.numbers.get(flag) == 0.0 for r in a.arms[i]) for i in ARMS}
    if any(a.unbounded.values()):
        a.notes.append(
            "a basin reaches the grid's end in the "
            + " and ".join(_arm_name(i) for i in ARMS if a.unbounded[i])
            + f" runs (its width is a lower bound; widen {a.measure.widen})"
        )


# the checks a ClaimSpec may name (analysis/spec.py), applied in its order after the baseline rule
CHECKS = {"matched_loss": _matched_loss, "min_epochs": _min_epochs, "threshold_reached": _threshold_reached}


def finish(a: Assessment, p_adjusted: float, family: int, rule: Rule) -> Verdict:
    spec, c = a.spec, a.comparison
    numbers: dict = {
        "measure": a.measure.key if a.measure else None,
        "per_run": {
            i: [
                {
                    "seed": r.seed,
                    "lr": r.lr,
                    "run": r.run,
                    "value": r.numbers.get(a.measure.key) if a.measure else None,
                    "source": r.source,
                }
                for r in a.arms.get(i) or []
            ]
            for i in ARMS
        },
        "rates": {i: {"tried": v[0], "chosen": v[1]} for i, v in a.rates.items()},
    }
    if a.measure is None or c is None:
        return Verdict(spec.claim, a.task, UNRESOLVED, f"not resolved: {a.blocked}." + _notes(a), numbers)
    numbers |= {"comparison": c.as_dict(), "p_adjusted": p_adjusted, "family": family}
    conf = rule.confidence
    label = a.measure.label
    facts = f"{label}: pretrained {_arm_text(c.a, conf)}, from scratch {_arm_text(c.b, conf)}"
    if min(c.a.n, c.b.n) < rule.min_runs:
        v = DESCRIPTIVE
        lead = f"descriptive only (n = {c.a.n}/{c.b.n} runs; ≥ {rule.min_runs} per arm decide)"
        stats_txt = ""
        if math.isfinite(c.difference):
            stats_txt = f"; difference {_g(c.difference)}"
    else:
        holm_txt = f"Holm-adjusted over {family} claim{'s' if family != 1 else ''}; unadjusted {_p(c.p)}"
        effect = f"{_g(c.difference)} ({conf:.0%} CI [{_g(c.ci_low)}, {_g(c.ci_high)}])"
        g_txt = f"Hedges' g = {_g(c.hedges_g, 2)} [{_g(c.g_low, 2)}, {_g(c.g_high, 2)}]"
        stats_txt = (
            f"; {c.test}, n = {c.a.n}/{c.b.n} runs, p = {_p(p_adjusted)} ({holm_txt}), "
            f"difference pretrained − scratch {effect}, {g_txt}"
        )
        if a.blocked:
            v, lead = UNRESOLVED, f"not resolved: {a.blocked}"
            stats_txt = stats_txt.replace(
                f"p = {_p(p_adjusted)} ({holm_txt})", f"p = {_p(c.p)} (unadjusted; not in the Holm family)"
            )
        else:
            v = evidence.verdict(c, p_adjusted, a.measure.better, rule)
            unb = a.unbounded
            if unb and (
                (v == SUPPORTED and unb["scratch"]) or (v == CONTRADICTED and unb["pretrained"])
            ):  # a lower-bound width can only win
                v = UNRESOLVED
            lead = {
                SUPPORTED: f"supported: {spec.supported}",
                CONTRADICTED: f"contradicted: {spec.contradicted}",
                UNRESOLVED: f"not resolved at α = {rule.alpha:g}",
            }[v]
    quoted = []
    for key, qlabel in spec.quoted:
        if a.measure and key == a.measure.key:
            continue
        vals = {i: [r.numbers.get(key) for r in a.arms[i] if r.numbers.get(key) is not None] for i in ARMS}
        if any(vals.values()):
            quoted.append(
                f"{qlabel}: "
                + ", ".join(
                    f"{_arm_name(i)} {_arm_text(evidence.aggregate(vals[i], conf), conf)}" for i in ARMS
                )
            )
    tail = (" Quoted, not decided on — " + "; ".join(quoted) + ".") if quoted else ""
    return Verdict(spec.claim, a.task, v, f"{lead} — {facts}{stats_txt}.{_notes(a)}{tail}", numbers)


def _arm_name(init: str) -> str:
    return "from scratch" if init == "scratch" else init


def _notes(a: Assessment) -> str:
    return "".join(f" {n[0].upper()}{n[1:]}." for n in a.notes)


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def rule_from(cfg: dict) -> tuple[Rule, Options]:
    """The decision rule and the claims' options from the `evidence` config (conf/evidence/default.yaml)."""
    try:
        rule = Rule(
            float(cfg["alpha"]),
            int(cfg["min_runs"]),
            float(cfg["confidence"]),
            float(cfg["matched_loss_rtol"]),
        )
        return rule, Options(f"{float(cfg['width_eps']):g}", int(cfg["min_epochs"]))
    except KeyError as err:
        raise ValueError(f"evidence config has no {err.args[0]!r}") from None


def configured_rule() -> tuple[Rule, Options]:
    """The rule of conf/evidence/default.yaml (for a caller that has no results directory's own)."""
    return rule_from(OmegaConf.to_container(OmegaConf.load(Path(CONF_DIR) / "evidence" / "default.yaml")))


def decide_all(
    analyses: dict[str, list[dict]], rule: Rule | None = None, opts: Options | None = None
) -> list[Verdict]:
    """Every claim for every task the analyses cover; Holm's correction over all the claims decided
    together (those with ≥ rule.min_runs runs per arm, both arms learned, a finite p). Without a
    rule: conf/evidence/default.yaml's."""
    if rule is None or opts is None:
        rule, opts = configured_rule()
    records = {name: run_records(name, datas, opts) for name, datas in analyses.items()}
    tasks = sorted({r.task for recs in records.values() for r in recs})
    assessments = [
        assess(spec, records.get(spec.analysis, []), task, rule, opts)
        for task in tasks
        for spec in registry.claims()
    ]
    family = [
        a for a in assessments if a.testable and min(a.comparison.a.n, a.comparison.b.n) >= rule.min_runs
    ]
    adjusted = dict(zip(map(id, family), evidence.holm([a.comparison.p for a in family])))
    return [finish(a, adjusted.get(id(a), math.nan), len(family), rule) for a in assessments]
