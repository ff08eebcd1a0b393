"""The paper's claims, each decided across runs (seeds) under the analysis plan (report/plan.py)
by bertviz_landscape.analysis.measures.evidence.

Each claim is declared by the analysis whose numbers decide it (its ``ClaimSpec`` in the
analysis module's ``SPEC``, analysis/spec.py); the plan registers, per claim, the metric that
decides it, the direction the paper predicts and the test; this module decides them all, in the
paper's order (analysis.registry.claims()). `decide_all` is the one entry point (the report and
the calibration tests call it).

`analyses` maps an analysis name to its JSONs (format bertviz-analysis/1; one JSON per run, each
with its per-run ``numbers``). For every task, the runs of each arm give one number each; the
registered test (evidence.compare) compares them with the run as the unit; Holm's correction runs
over every registered claim of every task. The verdicts:

supported / contradicted   the Holm-adjusted p is below α; contradicted only on the registered
                           metric, at matched conditions (evidence.py: three decisions)
not resolved               no decision at α (the sentence says when n cannot reach it and which
                           preset decides), a missing number, too short a training, the ``block`` rule
not comparable             arms of different models; training losses further apart than
                           ``matched_loss_rtol`` without the registered matched-loss measurement
                           (paired only with runs in the comparison); censored in both arms
descriptive only           fewer than ``min_runs`` runs per arm (or a claim the plan does not register)

A run that did not beat its majority baseline (analysis.common.baseline_verdict) has no learned
optimum to measure: by the plan's ``plateau_runs`` it is excluded from the comparison and named
(``exclude``), or it leaves the claim "not resolved" (``block``). A claim whose number is the
optimisation outcome itself (``ClaimSpec.keeps_plateau_runs``: easier optimisation) keeps every run.
Where an arm holds runs of several learning rates, the arm is its best rate by mean dev metric and
the sentence names the rates tried. Each claim reads its registered metric; when a run lacks it,
another of the claim's measures is shown and the claim is not resolved. A width whose interval
reached the end of its grid (``<key>_bounded`` = 0) is a right-censored lower bound: the claim is
then tested on Gehan ranks. The named ``checks`` a claim applies: ``matched_loss``, ``min_epochs``,
``early_epoch``, ``threshold_reached``.

A claim registered with an equivalence test (``test: tost``, its ``margin`` and ``early_epoch`` in the
plan: robustness to overfitting in conf/plan/replicate.yaml) tests the pretrained runs' number
within ±margin (evidence.equivalence); the from-scratch runs are the comparison, described beside
it. It is supported when the Holm-adjusted TOST p is below α, else not resolved (never
contradicted); runs measured from another early epoch than the plan's leave it not resolved.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field, replace

import numpy as np

from bertviz_landscape.analysis import registry
from bertviz_landscape.analysis.measures import evidence
from bertviz_landscape.analysis.measures.evidence import (
    CONTRADICTED,
    DESCRIPTIVE,
    NOT_COMPARABLE,
    SUPPORTED,
    UNRESOLVED,
    Options,
    Rule,
)
from bertviz_landscape.analysis.spec import ClaimSpec, Measure, finite
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.publish.report import plan as plan_mod
from bertviz_landscape.publish.report.plan import Plan, Registration, rule_from

__all__ = [
    "CLAIMS",
    "CONTRADICTED",
    "DESCRIPTIVE",
    "NOT_COMPARABLE",
    "SUPPORTED",
    "UNRESOLVED",
    "ClaimSpec",
    "Measure",
    "Options",
    "Rule",
    "Verdict",
    "decide_all",
    "rule_from",
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
    model: str | None = None  # the model it trained (run.json's); arms of different models are not compared
    steps: int | None = None  # the optimiser steps it took (its budget, with lr)

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
                run.get("model"),
                int(run["steps"]) if isinstance(run.get("steps"), (int, float)) else None,
            )
            ident = (rec.task, rec.init, rec.seed, rec.lr, rec.run, rec.model)
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
    reg: Registration | None = None
    arms: dict = field(default_factory=dict)  # init -> [RunRecord] (best rate, exclusions applied)
    excluded: dict = field(default_factory=dict)  # init -> [RunRecord] left out by the plateau rule
    measure: Measure | None = None
    values: dict = field(default_factory=dict)  # init -> [value] compared (matched-loss values when used)
    matched: str | None = None  # the pretrained arm's matched-loss measurement, when its values are compared
    censored: dict = field(default_factory=dict)  # init -> [bool] (a lower bound)
    comparison: evidence.Comparison | None = None
    blocked: str | None = None  # why no decision is made (missing numbers, plateau, too short)
    not_comparable: str | None = None  # why the arms cannot be compared at all
    notes: list[str] = field(default_factory=list)
    rates: dict = field(default_factory=dict)  # init -> (rates tried, chosen)
    budgets: dict = field(
        default_factory=dict
    )  # init -> "30 steps at lr 2e-05", when the arms' budgets differ
    budget_note: str = ""  # the arms' budgets differ (…): the row's caveat says it too

    @property
    def registered(self) -> bool:
        return self.reg is not None and self.measure is not None and self.measure.key == self.reg.metric

    @property
    def testable(self) -> bool:
        return (
            self.blocked is None
            and self.not_comparable is None
            and self.registered
            and self.comparison is not None
            and math.isfinite(self.comparison.p)
        )


def _g(v: float | None, digits: int = 3) -> str:
    return "–" if v is None or not math.isfinite(v) else f"{v:.{digits}g}"


def _arm_text(agg: evidence.Aggregate, confidence: float) -> str:
    if agg.n == 0:
        return "not measured"
    if agg.n == 1:
        return f"{_g(agg.mean)} (n = 1)"
    cens = f", {agg.censored} censored" if agg.censored else ""
    ci = f"{confidence:.0%} bootstrap CI [{_g(agg.ci_low)}, {_g(agg.ci_high)}]"
    return f"{_g(agg.mean)} ± {_g(agg.std, 2)} (n = {agg.n}{cens}, {ci})"


def default_registrations() -> dict[str, Registration]:
    """The demo plan's registrations (conf/plan/demo.yaml); a claim it does not name as its analysis
    would register it: its first measure, its direction, the rank test where the measure can be
    censored (a width with `widen`)."""
    regs = {
        c.claim: Registration(
            c.claim, c.measures[0].key, c.measures[0].better, "rank" if c.measures[0].widen else "permutation"
        )
        for c in registry.claims()
    }
    return regs | plan_mod.plan_from(plan_mod.preset("demo")).claims


def _models(a: Assessment) -> str | None:
    """Why the arms are not comparable by their models (None: one model, or not recorded)."""
    known = {i: sorted({r.model for r in a.arms[i] if r.model}) for i in ARMS}
    if not any(known.values()):
        return None
    if len(set(known["pretrained"]) | set(known["scratch"])) > 1:
        return (
            "arms of different models ("
            + "; ".join(f"{_arm_name(i)}: {', '.join(known[i]) or '?'}" for i in ARMS)
            + ")"
        )
    return None


def assess(
    spec: ClaimSpec,
    records: list[RunRecord],
    task: str,
    rule: Rule,
    opts: Options,
    reg: Registration | None = None,
) -> Assessment:
    a = Assessment(spec, task, reg)
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
    a.not_comparable = _models(a)
    if a.not_comparable:
        return a
    failed = {i: [r for r in a.arms[i] if r.beat is False] for i in ARMS}
    plateau = _plateau_text(a, failed) if any(failed.values()) else None
    if plateau and spec.keeps_plateau_runs:
        a.notes.append(
            f"{plateau} did not beat their majority baseline and stay in the comparison (failing to "
            "train is this claim's outcome)"
        )
    elif plateau and rule.plateau_runs == "exclude":
        a.excluded = failed
        a.arms = {i: [r for r in a.arms[i] if r.beat is not False] for i in ARMS}
        a.notes.append(
            f"excluded by the plan's rule (plateau_runs = exclude): {plateau}, which did not beat their "
            "majority baseline (a plateau has no learned optimum to measure)"
        )
        if not all(a.arms[i] for i in ARMS):
            a.blocked = (
                "no run of the "
                + " and ".join(_arm_name(i) for i in ARMS if not a.arms[i])
                + " arm beat its majority baseline — a claim is decided only where both arms learned"
            )
            return a
    measures = list(spec.measures)
    if reg is not None:
        own = next((m for m in measures if m.key == reg.metric), None) or Measure(
            reg.metric, reg.direction, reg.metric
        )
        measures = [replace(own, better=reg.direction, fallback=False)] + [
            m for m in measures if m.key != reg.metric
        ]
    for m in measures:
        if all(r.numbers.get(m.key) is not None for i in ARMS for r in a.arms[i]):
            a.measure = m
            break
    if a.measure is None:
        first = measures[0].key
        missing = [r for i in ARMS for r in a.arms[i] if r.numbers.get(first) is None]
        a.blocked = (
            f"not measured: {first} is undefined for "
            + ", ".join(r.label for r in missing)  # the report's source row names each run's file
            + (
                f", and no other of {', '.join(m.key for m in measures[1:])} is in every run's numbers"
                if len(measures) > 1
                else ""
            )
            + f" (the {spec.analysis} numbers)"
        )
        return a
    key = a.measure.key
    a.values = {i: [r.numbers[key] for r in a.arms[i]] for i in ARMS}
    a.censored = {i: [r.numbers.get(f"{key}_bounded") == 0.0 for r in a.arms[i]] for i in ARMS}
    if plateau and not spec.keeps_plateau_runs and rule.plateau_runs == "block":
        a.blocked = (
            plateau
            + " did not beat their majority baseline — a claim is decided only where both arms learned"
        )
    for check in spec.checks:
        if check not in CHECKS:
            raise ValueError(
                f"claim {spec.claim!r} ({spec.analysis}): unknown check {check!r} "
                f"(known: {', '.join(CHECKS)})"
            )
        CHECKS[check](a, rule, opts)
    if any(any(c) for c in a.censored.values()):
        a.notes.append(
            "censored (the basin reached the grid's end: a lower bound"
            + (f"; widen {a.measure.widen}" if a.measure.widen else "")
            + "): "
            + ", ".join(f"{_arm_name(i)} {sum(a.censored[i])} of {len(a.censored[i])}" for i in ARMS)
            + " — compared on Gehan ranks"
        )
        if not evidence.orderable(
            a.values["pretrained"], a.values["scratch"], a.censored["pretrained"], a.censored["scratch"]
        ):
            a.not_comparable = (
                a.not_comparable
                or "censored in both arms: no run of one arm can be ordered against the other's"
            )
    test = reg.test if reg is not None else ("rank" if a.measure.widen else "permutation")
    if test in evidence.EQUIVALENCE:
        if a.registered:  # an equivalence margin belongs to the registered metric only
            a.comparison = evidence.equivalence(
                a.values["pretrained"], a.values["scratch"], rule, float(reg.margin)
            )
        elif a.blocked is None:
            a.blocked = (
                f"the registered metric {reg.metric} is not measured in every run ({a.measure.key} is; "
                f"its equivalence margin belongs to {reg.metric} only)"
            )
        return a
    a.comparison = evidence.compare(
        a.values["pretrained"],
        a.values["scratch"],
        rule,
        test,
        a.censored["pretrained"],
        a.censored["scratch"],
    )
    return a


def _plateau_text(a: Assessment, failed: dict) -> str:
    """The runs of each arm that did not beat their majority baseline, named with their metric."""
    parts = []
    for i, runs in failed.items():
        if runs:
            lr = f" at lr {runs[0].lr:g}" if i in a.rates and runs[0].lr is not None else ""
            parts.append(
                f"{len(runs)} of {len(a.arms[i])} {_arm_name(i)} runs{lr} (seed "
                + ", ".join(str(r.seed) for r in runs)
                + f": {runs[0].metric} "
                + ", ".join(_g(r.dev_metric) for r in runs)
                + " vs majority baseline "
                + ", ".join(dict.fromkeys(_g(r.baseline) for r in runs))
                + ")"
            )
    return " and ".join(parts)


def _epochs(r: RunRecord) -> float | None:
    """How many epochs the run trained: its longtrain numbers' ``num_epochs``, else (an older JSON)
    ``epochs`` from its per-epoch curve."""
    v = r.numbers.get("num_epochs")
    return r.numbers.get("epochs") if v is None else v


def _min_epochs(a: Assessment, rule: Rule, opts: Options) -> None:
    """Long training shorter than `opts.min_epochs` cannot show overfitting: not resolved."""
    epochs = [_epochs(r) for i in ARMS for r in a.arms[i] if _epochs(r) is not None]
    if epochs and min(epochs) < opts.min_epochs:
        a.blocked = (
            f"only {int(min(epochs))} epoch{'s' if min(epochs) != 1 else ''} — overfitting needs long "
            f"training (≥ {opts.min_epochs}; bertviz-train experiment=overfit)"
        )


def _early_epoch(a: Assessment, rule: Rule, opts: Options) -> None:
    """The registered metric measured from the plan's early epoch (``early_epoch`` of the claim's
    registration) in every run; a run measured from another one leaves the claim not resolved."""
    want = a.reg.early_epoch if a.reg is not None else None
    if want is None or not a.registered or a.blocked:
        return
    off = [r for i in ARMS for r in a.arms[i] if r.numbers.get("early_epoch") not in (float(want), int(want))]
    if off:
        a.blocked = (
            f"the plan registers {a.reg.metric} from epoch {want}, but "
            + ", ".join(
                f"{r.label} was measured from epoch {_g(r.numbers.get('early_epoch'))}" for r in off[:4]
            )
            + (f" and {len(off) - 4} more" if len(off) > 4 else "")
            + f" (bertviz-analyze analysis=longtrain analysis.early_epoch={want})"
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
    """Arms whose mean training losses at θ1 are more than rule.matched_loss_rtol apart are compared
    at matched loss — the pretrained runs' registered matched measurement (taken where their path
    reaches the same seed's from-scratch J(θ1)), each paired with a from-scratch run that is in the
    comparison — or not at all ("not comparable")."""
    loss = {i: [r.numbers.get("train_loss_theta1") for r in a.arms[i]] for i in ARMS}
    if not all(all(v is not None for v in loss[i]) for i in ARMS):
        a.notes.append("training losses at θ1 not measured for every run: matched loss not checked")
        return
    mp, ms = (float(np.mean(loss[i])) for i in ARMS)
    if abs(mp - ms) <= rule.matched_loss_rtol * max(abs(mp), abs(ms), 1e-12):
        return
    apart = (
        f"mean J(θ1) pretrained {mp:.3g}, from scratch {ms:.3g}: more than {rule.matched_loss_rtol:.0%} apart"
    )
    key = a.reg.matched if a.reg is not None else None
    partners = {r.seed for r in a.arms["scratch"]}
    if key and a.measure is not None and a.measure.key == (a.reg.metric if a.reg else None):
        matched = [r.numbers.get(key) for r in a.arms["pretrained"]]
        unpaired = [r.seed for r in a.arms["pretrained"] if r.seed not in partners]
        if all(v is not None for v in matched) and not unpaired:
            a.values["pretrained"] = matched
            a.matched = key
            a.censored["pretrained"] = [r.numbers.get(f"{key}_bounded") == 0.0 for r in a.arms["pretrained"]]
            a.notes.append(f"compared at matched training loss ({apart} at θ1): the pretrained runs' {key}")
            return
        why = (
            f"its partner from-scratch run is not in the comparison (seed {', '.join(map(str, unpaired))})"
            if all(v is not None for v in matched)
            else f"{key} is not measured for every pretrained run"
        )
        a.not_comparable = (
            f"the arms differ in training loss ({apart}) and no matched-loss measurement exists: {why}"
        )
        return
    a.not_comparable = (
        f"the arms differ in training loss ({apart}) and no matched-loss measurement is registered"
    )


def _budget_text(steps: list[int], rates: list[float]) -> str:
    """An arm's budget, e.g. "30 steps at lr 2e-05": a range where its runs differ, either part
    alone when the other is not recorded."""

    def span(values, fmt):
        return fmt(values[0]) if len(values) == 1 else f"{fmt(values[0])}–{fmt(values[-1])}"

    parts = ([f"{span(steps, str)} steps"] if steps else []) + (
        [f"lr {span(rates, lambda x: f'{x:g}')}"] if rates else []
    )
    return " at ".join(parts)


def _budgets(a: Assessment, rule: Rule, opts: Options) -> None:
    """Arms trained with different step budgets or learning rates are compared as they are, and the
    claim says so: in its row's caveat, its sentence and its figure (`Assessment.budgets`)."""
    steps = {i: sorted({r.steps for r in a.arms[i] if r.steps is not None}) for i in ARMS}
    rates = {i: sorted({r.lr for r in a.arms[i] if r.lr is not None}) for i in ARMS}
    differ = [
        what
        for what, by in (("step budgets", steps), ("learning rates", rates))
        if all(by[i] for i in ARMS) and by["pretrained"] != by["scratch"]
    ]
    if not differ:
        return
    a.budgets = {i: _budget_text(steps[i], rates[i]) for i in ARMS}
    a.budget_note = (
        f"the arms' {' and '.join(differ)} differ ("
        + ", ".join(f"{_arm_name(i)} {a.budgets[i]}" for i in ARMS)
        + ")"
    )
    a.notes.append(f"{a.budget_note}: the comparison is of the runs as trained, not at one budget")


# the checks a ClaimSpec may name (analysis/spec.py), applied in its order after the baseline rule
CHECKS = {
    "matched_loss": _matched_loss,
    "min_epochs": _min_epochs,
    "early_epoch": _early_epoch,
    "threshold_reached": _threshold_reached,
    "budgets": _budgets,
}


def _per_run(a: Assessment) -> dict:
    out = {}
    for i in ARMS:
        rows = []
        kept = {id(r) for r in a.arms.get(i) or []}
        vals = dict(zip(map(id, a.arms.get(i) or []), a.values.get(i) or []))
        cens = dict(zip(map(id, a.arms.get(i) or []), a.censored.get(i) or []))
        for r in list(a.arms.get(i) or []) + list(a.excluded.get(i) or []):
            rows.append(
                {
                    "seed": r.seed,
                    "lr": r.lr,
                    "run": r.run,
                    "model": r.model,
                    "value": vals.get(id(r), r.numbers.get(a.measure.key) if a.measure else None),
                    "censored": bool(cens.get(id(r), False)),
                    "excluded": None if id(r) in kept else "did not beat its majority baseline",
                    "source": r.source,
                }
            )
        out[i] = rows
    return out


def finish(a: Assessment, p_adjusted: float, family: int, rule: Rule, decided_by: str = "") -> Verdict:
    spec, c = a.spec, a.comparison
    numbers: dict = {
        "measure": a.measure.key if a.measure else None,
        "registered": a.reg.metric if a.reg else None,
        "matched": a.matched,  # the pretrained values are this measurement (at the scratch partner's J(θ1))
        "per_run": _per_run(a),
        "rates": {i: {"tried": v[0], "chosen": v[1]} for i, v in a.rates.items()},
        "family": family,
        "p_adjusted": p_adjusted,
    }
    label = a.measure.label if a.measure else (a.reg.metric if a.reg else spec.measures[0].label)
    if a.reg is not None and a.measure is not None and not a.registered and c is None:
        # a claim left undecided before any comparison, its registered metric unmeasured: the table's
        # "registered metric" column names the registered one, not a fallback measure whose numbers
        # nothing shows
        label = next((m.label for m in spec.measures if m.key == a.reg.metric), a.reg.metric)
    caveat = ""
    if a.not_comparable:
        v, lead, caveat = NOT_COMPARABLE, f"not comparable: {a.not_comparable}", a.not_comparable
    elif a.measure is not None and min(len(a.values.get(i) or []) for i in ARMS) < rule.min_runs:
        n = "/".join(str(len(a.values.get(i) or [])) for i in ARMS)
        v = DESCRIPTIVE
        lead = f"descriptive only (n = {n} runs; ≥ {rule.min_runs} per arm decide)"
        caveat = f"n below the plan's minimum of {rule.min_runs} per arm"
    elif a.blocked or c is None:
        v, lead, caveat = UNRESOLVED, f"not resolved: {a.blocked}", a.blocked or ""
    elif a.reg is None:
        v, lead, caveat = (
            DESCRIPTIVE,
            "descriptive only: the claim is not registered in the plan",
            "not registered",
        )
    elif not a.registered:
        v = UNRESOLVED
        lead = f"not resolved: the registered metric {a.reg.metric} is not measured in every run"
        caveat = f"{a.measure.key} shown, not the registered {a.reg.metric}"
    elif c.test in evidence.EQUIVALENCE:
        v = evidence.verdict(c, p_adjusted, a.reg.direction, rule)
        lead, caveat = _equivalence_lead(a, c, v, rule)
    else:
        v = evidence.verdict(c, p_adjusted, a.reg.direction, rule)
        lead = {
            SUPPORTED: f"supported: {spec.supported}",
            CONTRADICTED: f"contradicted: {spec.contradicted}",
            UNRESOLVED: f"not resolved at α = {rule.alpha:g}",
        }[v]
        if v == UNRESOLVED and c.p_min * family >= rule.alpha:
            caveat = (
                f"n = {c.a.n}/{c.b.n} cannot reach α = {rule.alpha:g} after Holm over {family}: "
                "its smallest exact "
                f"p is {_p(c.p_min)} (× {family} = {_p(c.p_min * family)})"
                + (f"; {decided_by} decides" if decided_by else "")
            )
            lead += f" — {caveat}"
    if not caveat and a.excluded and any(a.excluded.values()):
        caveat = "plateau runs excluded: " + ", ".join(
            f"{_arm_name(i)} seed {', '.join(str(r.seed) for r in a.excluded[i])}"
            for i in ARMS
            if a.excluded.get(i)
        )
    if not caveat and any(any(x) for x in a.censored.values()):
        caveat = "censored widths (lower bounds), ranked"
    if a.budget_note:  # said beside any other caveat: it qualifies every verdict of the claim
        caveat = f"{caveat}; {a.budget_note}" if caveat else a.budget_note
        numbers["budgets"] = a.budgets
    facts = stats_txt = ""
    row = {"claim": spec.title, "task": a.task, "verdict": v, "metric": label, "caveat": caveat}
    if c is not None:
        conf = rule.confidence
        facts = f" — {label}: pretrained {_arm_text(c.a, conf)}, from scratch {_arm_text(c.b, conf)}"
        numbers["comparison"] = c.as_dict()
        in_family = a.testable and v != DESCRIPTIVE
        numbers["in_family"] = in_family  # decided by its test (its Holm p is the deciding number)
        level = f" ({c.ci_level:.0%} exact)" if math.isfinite(c.ci_level) else ""
        if c.test in evidence.EQUIVALENCE:
            level = f" ({c.ci_level:.0%} t interval)"
        interval = f" [{_g(c.ci_low)}, {_g(c.ci_high)}]{level}" if math.isfinite(c.ci_low) else ""
        p_txt = (
            f"p = {_p(c.p)} ({c.test_name}, two-sided), Holm over {family}: {_p(p_adjusted)}"
            if in_family
            else f"p = {_p(c.p)} ({c.test_name}; not decided, enters Holm with p = 1)"
        )
        stats_txt = (
            f"; n = {c.a.n}/{c.b.n} runs, {p_txt}; "
            f"{c.effect} pretrained − scratch {_g(c.difference)}{interval}; "
            f"described: difference of means {_g(c.mean_difference)}, Welch p {_p(c.welch_p)}, "
            f"Hedges' g {_g(c.hedges_g, 2)} [{_g(c.g_low, 2)}, {_g(c.g_high, 2)}]"
        )
        if c.test in evidence.EQUIVALENCE:
            stats_txt = _equivalence_stats(c, p_adjusted, family, in_family, interval)
        row |= {
            "pretrained": _cell(c.a),
            "scratch": _cell(c.b),
            "difference": f"{_g(c.difference)}{interval}"
            + (" (concordance)" if c.effect.startswith("Gehan") else ""),
            "p": f"{_p(c.p)} ({'rank' if c.test == 'rank' else 'perm. ∧ Welch'}; "
            f"Holm {_p(p_adjusted) if in_family else '–'})",
            "n": f"{c.a.n}/{c.b.n}",
        }
        if c.test in evidence.EQUIVALENCE:
            row |= {
                "difference": f"pretrained {_g(c.difference)}{interval}, margin ±{c.margin:g}",
                "p": f"{_p(c.p)} (TOST; Holm {_p(p_adjusted) if in_family else '–'})",
            }
    else:
        n = {i: len(a.arms.get(i) or []) for i in ARMS}
        row |= {
            "pretrained": "–",
            "scratch": "–",
            "difference": "–",
            "p": "–",
            "n": f"{n['pretrained']}/{n['scratch']}",
        }
    numbers["row"] = row
    quoted = []
    for key, qlabel in spec.quoted:
        if a.measure and key == a.measure.key:
            continue
        vals = {
            i: [r.numbers.get(key) for r in a.arms.get(i) or [] if r.numbers.get(key) is not None]
            for i in ARMS
        }
        if any(vals.values()):
            quoted.append(
                f"{qlabel}: "
                + ", ".join(
                    f"{_arm_name(i)} "
                    + _arm_text(evidence.aggregate(vals[i], rule.confidence), rule.confidence)
                    for i in ARMS
                )
            )
    tail = (" Quoted, not decided on — " + "; ".join(quoted) + ".") if quoted else ""
    return Verdict(spec.claim, a.task, v, f"{lead}{facts}{stats_txt}.{_notes(a)}{tail}", numbers)


def _equivalence_lead(a: Assessment, c: evidence.Comparison, v: str, rule: Rule) -> tuple[str, str]:
    """The lead and caveat of an equivalence claim (``tost``): supported, or not resolved — saying
    when the pretrained runs' interval lies beyond the margin (the test decides equivalence only)."""
    early = a.reg.early_epoch if a.reg is not None else None
    span = f"from epoch {early} to the last" if early is not None else ""
    m = f"±{c.margin:g}"
    if v == SUPPORTED:
        return (
            f"supported: training on changes the pretrained runs' dev metric by less than {m} {span} "
            "(equivalence, TOST)".replace("  ", " "),
            "",
        )
    lead = f"not resolved at α = {rule.alpha:g}: equivalence within {m} not shown"
    caveat = f"TOST within {m} not passed"
    if math.isfinite(c.ci_high) and c.ci_high < -c.margin:
        caveat = f"the pretrained runs lost more than {c.margin:g} (their interval lies below −{c.margin:g})"
        lead += f" — {caveat}; a TOST decides equivalence only"
    elif math.isfinite(c.ci_low) and c.ci_low > c.margin:
        caveat = f"the pretrained runs gained more than {c.margin:g} (still learning after the early epoch)"
        lead += f" — {caveat}"
    return lead, caveat


def _equivalence_stats(
    c: evidence.Comparison, p_adjusted: float, family: int, in_family: bool, interval: str
) -> str:
    """The statistics of an equivalence claim: the TOST p with both one-sided p, Holm, the pretrained
    runs' mean change with its (1 − 2α) interval, and the from-scratch comparison (described)."""
    p_txt = (
        f"TOST p = {_p(c.p)} ({c.test_name}: p {_p(c.p_greater)} that it lies above −{c.margin:g}, "
        f"{_p(c.p_less)} below +{c.margin:g}), Holm over {family}: {_p(p_adjusted)}"
        if in_family
        else f"TOST p = {_p(c.p)} ({c.test_name}; not decided, enters Holm with p = 1)"
    )
    return (
        f"; n = {c.a.n}/{c.b.n} runs, {p_txt}; {c.effect} {_g(c.difference)}{interval} (inside "
        f"±{c.margin:g} is equivalence at α); the from-scratch runs are the comparison, not decided on: "
        f"their TOST p {_p(c.b_p)}; described: pretrained − scratch difference of means "
        f"{_g(c.mean_difference)}, Welch p {_p(c.welch_p)}, Hedges' g {_g(c.hedges_g, 2)} "
        f"[{_g(c.g_low, 2)}, {_g(c.g_high, 2)}]"
    )


def _cell(agg: evidence.Aggregate) -> str:
    if agg.n == 0:
        return "–"
    cens = f", {agg.censored} ≥" if agg.censored else ""
    sd = f" ± {_g(agg.std, 2)}" if agg.n > 1 else ""
    return f"{_g(agg.mean)}{sd}{cens}"


def _arm_name(init: str) -> str:
    return "from scratch" if init == "scratch" else init


def _notes(a: Assessment) -> str:
    return "".join(f" {n[0].upper()}{n[1:]}." for n in a.notes)


def _p(p: float) -> str:
    if not math.isfinite(p):
        return "–"
    return f"{p:.2g}" if p >= 1e-3 else f"{p:.1e}"


def configured_rule() -> tuple[Rule, Options]:
    """The rule of the demo's plan (conf/plan/demo.yaml), for a caller without a results directory's own."""
    return rule_from(plan_mod.preset("demo"))


def decide_all(
    analyses: dict[str, list[dict]],
    rule: Rule | None = None,
    opts: Options | None = None,
    plan: Plan | None = None,
) -> list[Verdict]:
    """Every registered claim for every task the analyses cover, decided under `plan` (default: the
    demo's plan, conf/plan/demo.yaml; with `rule` and `opts` only, the registry's first measures as
    the registrations). Holm's correction runs over the whole registered family — every registered
    claim of every task, decidable or not: a claim without a test enters with p = 1."""
    if plan is None:
        if rule is None or opts is None:
            plan = plan_mod.plan_from(plan_mod.preset("demo"))
        else:
            plan = Plan(rule, opts, default_registrations())
    rule, opts = plan.rule, plan.opts
    records = {name: run_records(name, datas, opts) for name, datas in analyses.items()}
    tasks = sorted({r.task for recs in records.values() for r in recs})
    assessments = [
        assess(spec, records.get(spec.analysis, []), task, rule, opts, plan.claims.get(spec.claim))
        for task in tasks
        for spec in registry.claims()
    ]
    family = [a for a in assessments if a.reg is not None]
    ps = [
        a.comparison.p if a.testable and min(a.comparison.a.n, a.comparison.b.n) >= rule.min_runs else 1.0
        for a in family
    ]
    adjusted = dict(zip(map(id, family), evidence.holm(ps)))
    return [finish(a, adjusted.get(id(a), math.nan), len(family), rule, plan.decided_by) for a in assessments]
