"""The analysis plan: what decides each claim, registered per preset and frozen per results directory.

A preset's plan is conf/plan/<preset>.yaml: per claim the primary metric, its direction (the
paper's prediction), the test; α, the family (every registered claim), the exclusion rule with its
history, every threshold, the minimum n, which seeds select settings and which confirm, and the
planted effect it promises to detect (analysis/evidence.py says how a claim is decided with it).

`freeze(root, doc)` writes it into a results directory before anything trains: ``plan.yaml`` (the
document) and ``plan.json`` ({"format", "preset", "sha256", "frozen_utc", "plan"}; the SHA-256 is
of the document's canonical JSON). A frozen plan is never overwritten: a different one is refused
(returned as its changes, which the caller names). `resolve(root, doc)` gives the plan a report
decides under and its status: **confirmatory** when it is the frozen plan; **exploratory** when
it differs (the changes, keys old → new, and when each plan was made), or when the directory has
no frozen plan (an older results directory's ``evidence.json`` is still read: its rule, this
version's registered tests).
"""

from __future__ import annotations

import hashlib
import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from bertviz_landscape.analysis.measures.evidence import EQUIVALENCE, TESTS, Options, Rule
from bertviz_landscape.contracts import lr_sweep
from bertviz_landscape.contracts.atomic import write_json_atomic, write_text_atomic
from bertviz_landscape.contracts.config import CONF_DIR
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.resultsdir import ResultsDir

FORMAT = "bertviz-plan/1"


@dataclass(frozen=True)
class Registration:
    """One claim's registered decision: metric, direction (+1: pretrained higher; 0 for an
    equivalence test), test, the measurement that stands in for the metric at matched training loss
    (None: none), and an equivalence test's margin (±, in the metric's units) and the fixed early
    epoch its metric is measured from (None: not registered)."""

    claim: str
    metric: str
    direction: int
    test: str
    matched: str | None = None
    margin: float | None = None
    early_epoch: int | None = None


@dataclass(frozen=True)
class Plan:
    rule: Rule
    opts: Options
    claims: dict[str, Registration]
    decided_by: str = ""
    doc: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Status:
    """Whether a report is confirmatory (the frozen plan) or exploratory, and why."""

    mode: str  # "confirmatory" | "exploratory"
    sha256: str | None  # of the plan the report decided under
    frozen_sha256: str | None
    frozen_utc: str | None
    changes: tuple[tuple[str, object, object], ...] = ()  # (key, frozen value, value decided under)
    reason: str = ""

    def as_dict(self) -> dict:
        return {
            "mode": self.mode,
            "sha256": self.sha256,
            "frozen_sha256": self.frozen_sha256,
            "frozen_utc": self.frozen_utc,
            "changes": [{"key": k, "frozen": a, "now": b} for k, a, b in self.changes],
            "reason": self.reason,
        }


def preset(name: str = "demo") -> dict:
    """conf/plan/<name>.yaml as a plain dict."""
    path = Path(CONF_DIR) / "plan" / f"{name}.yaml"
    if not path.is_file():
        raise BadInput(f"plan={name!r}: no {path}")
    return yaml.safe_load(path.read_text())


def digest(doc: dict) -> str:
    """SHA-256 of the plan document's canonical JSON (sorted keys, no spaces)."""
    text = json.dumps(doc, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def _flat(doc, prefix: str = "") -> dict:
    if isinstance(doc, dict):
        out = {}
        for k, v in doc.items():
            out |= _flat(v, f"{prefix}{k}.")
        return out or {prefix[:-1]: {}}
    return {prefix[:-1]: doc}


def changes(old: dict, new: dict) -> list[tuple[str, object, object]]:
    """(dotted key, old value, new value) of every leaf that differs (absent: None)."""
    a, b = _flat(old), _flat(new)
    return [(k, a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)]


def rule_from(doc: dict) -> tuple[Rule, Options]:
    """The decision rule and the claims' options of a plan document (or an older evidence.json)."""
    try:
        rule = Rule(
            float(doc["alpha"]),
            int(doc["min_runs"]),
            float(doc["confidence"]),
            float(doc["matched_loss_rtol"]),
            # an evidence.json written before the key existed was decided under "block"
            str(doc.get("plateau_runs", "block")),
            int(doc.get("exact_max", 20000)),
            int(doc.get("mc_draws", 20000)),
            int(doc.get("bootstrap", 2000)),
        )
        return rule, Options(f"{float(doc['width_eps']):g}", int(doc["min_epochs"]))
    except KeyError as err:
        raise ValueError(f"the plan has no {err.args[0]!r}") from None
    except (TypeError, ValueError) as err:
        raise ValueError(f"the plan: {err}") from None


def _equivalence(claim: str, r: dict) -> tuple[float, int | None]:
    """An equivalence claim's margin (> 0, in the metric's units) and early epoch (≥ 1, or None)."""
    try:
        margin = float(r["margin"])
    except KeyError:
        raise ValueError(f"the plan's claims.{claim} (test {r.get('test')}) has no 'margin'") from None
    except (TypeError, ValueError):
        raise ValueError(f"the plan's claims.{claim}.margin must be a number, got {r['margin']!r}") from None
    if not (math.isfinite(margin) and margin > 0):
        raise ValueError(f"the plan's claims.{claim}.margin must be positive, got {r['margin']!r}")
    early = r.get("early_epoch")
    if early is not None and (isinstance(early, bool) or not isinstance(early, int) or early < 1):
        raise ValueError(f"the plan's claims.{claim}.early_epoch must be an epoch ≥ 1, got {early!r}")
    return margin, early


def plan_from(doc: dict) -> Plan:
    """A Plan from its document; ValueError naming the key that is missing or wrong."""
    rule, opts = rule_from(doc)
    regs = {}
    for claim, r in (doc.get("claims") or {}).items():
        if not isinstance(r, dict) or "metric" not in r:
            raise ValueError(f"the plan's claims.{claim} has no 'metric'")
        test = str(r.get("test", "permutation"))
        direction = int(r.get("direction", 0))
        if test not in TESTS:
            raise ValueError(
                f"the plan's claims.{claim}.test must be one of {', '.join(TESTS)}, got {test!r}"
            )
        if test in EQUIVALENCE:
            if direction != 0:
                raise ValueError(
                    f"the plan's claims.{claim}: test {test} has no direction (it tests a margin), "
                    f"got direction {r.get('direction')!r}"
                )
            margin, early = _equivalence(claim, r)
            regs[claim] = Registration(claim, str(r["metric"]), 0, test, r.get("matched"), margin, early)
            continue
        if direction not in (1, -1):
            raise ValueError(
                f"the plan's claims.{claim}.direction must be 1 or -1, got {r.get('direction')!r}"
            )
        regs[claim] = Registration(claim, str(r["metric"]), direction, test, r.get("matched"))
    return Plan(rule, opts, regs, str(doc.get("decided_by") or ""), doc)


def _seed_list(value, where: str) -> list[int]:
    if value is None:
        return []
    if isinstance(value, (str, bytes, bool)) or not isinstance(value, (list, tuple)):
        raise ValueError(f"{where} must be a list of integer seeds, got {value!r}")
    if any(isinstance(s, bool) or not isinstance(s, int) for s in value):
        raise ValueError(f"{where} must be a list of integer seeds, got {value!r}")
    if len(set(value)) != len(value):
        raise ValueError(f"{where} names a seed twice: {value!r}")
    return list(value)


def check_seeds(doc: dict) -> None:
    """The plan's selection seeds and confirmation seeds are disjoint (issue 28): a setting chosen on
    seeds the test also uses favours the arm it was tuned for. Checks ``seeds.select`` against
    ``seeds.confirm`` and, when the design names both, ``design.select_seeds`` against
    ``design.confirm_seeds``; ValueError naming the shared seeds."""
    pairs = []
    seeds = doc.get("seeds")
    if seeds is not None:
        if not isinstance(seeds, dict):
            raise ValueError(f"the plan's seeds must be {{select: [...], confirm: [...]}}, got {seeds!r}")
        pairs.append(("seeds.select", seeds.get("select"), "seeds.confirm", seeds.get("confirm")))
    design = doc.get("design") if isinstance(doc.get("design"), dict) else {}
    if design.get("select_seeds") is not None and design.get("confirm_seeds") is not None:
        pairs.append(
            ("design.select_seeds", design["select_seeds"], "design.confirm_seeds", design["confirm_seeds"])
        )
    for sel_key, sel, conf_key, conf in pairs:
        select, confirm = _seed_list(sel, f"the plan's {sel_key}"), _seed_list(conf, f"the plan's {conf_key}")
        shared = sorted(set(select) & set(confirm))
        if shared:
            raise ValueError(
                f"the plan's {sel_key} {select} and {conf_key} {confirm} share seed"
                f"{'s' if len(shared) > 1 else ''} {shared}: a setting selected on seeds the confirmatory "
                "comparison also uses favours the arm it was tuned for — give disjoint seeds"
            )


def from_evidence(ev: dict) -> dict:
    """An older results directory's evidence.json as a plan document: its rule, and the claims,
    tests and other keys of this version's demo plan (so a report of it is exploratory)."""
    doc = preset("demo")
    doc = {k: v for k, v in doc.items() if k != "plateau_runs"} | dict(ev)
    doc.setdefault("plateau_runs", "block")  # written before the key existed: decided under block
    return doc


def read_frozen(root: Path) -> dict | None:
    """<root>/plan.json ({"sha256", "frozen_utc", "plan", ...}) or None; a BadInput naming the file
    when it is not JSON, lacks a key, or its plan does not hash to its sha256 (edited by hand)."""
    path = ResultsDir(root).plan_json
    if not path.is_file():
        return None
    try:
        data = json.loads(path.read_text())
    except (ValueError, UnicodeDecodeError) as err:
        raise BadInput(f"{path}: not valid JSON ({err})") from None
    if not isinstance(data, dict) or not isinstance(data.get("plan"), dict) or "sha256" not in data:
        raise BadInput(f"{path}: expected {{'plan': {{...}}, 'sha256': ..., 'frozen_utc': ...}}")
    if digest(data["plan"]) != data["sha256"]:
        raise BadInput(
            f"{path}: its plan does not hash to its sha256 {str(data['sha256'])[:12]}… "
            "(edited after freezing)"
        )
    return data


def _now() -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def check(doc: dict) -> Plan:
    """The plan check before anything runs: `plan_from` (every key present and valid), `check_seeds`
    (selection and confirmation seeds disjoint) and, when the plan has one, its learning-rate sweep
    (contracts/lr_sweep.check_config: ≥ 3 rates per init, trained on the selection seeds); a
    BadInput naming what is wrong."""
    try:
        plan = plan_from(doc)
        check_seeds(doc)
        if doc.get("lr_sweep") is not None:
            lr_sweep.check_config(doc["lr_sweep"], (doc.get("seeds") or {}).get("select") or [])
    except ValueError as err:
        raise BadInput(f"the analysis plan (preset {doc.get('preset')!r}): {err}") from None
    return plan


def freeze(root: Path, doc: dict) -> list[tuple[str, object, object]]:
    """Write `doc` as the results directory's frozen plan (plan.yaml, then plan.json last) unless one
    is frozen already; returns the changes from the frozen plan to `doc` ([] when the same or newly
    frozen). A different frozen plan is never overwritten. A plan that fails `check` (e.g. selection
    seeds that also confirm) is refused — a BadInput — before anything is written."""
    root = Path(root)
    check(doc)
    frozen = read_frozen(root)
    if frozen is not None:
        return [] if frozen["sha256"] == digest(doc) else changes(frozen["plan"], doc)
    write_text_atomic(ResultsDir(root).plan_yaml, yaml.safe_dump(doc, sort_keys=False, allow_unicode=True))
    write_json_atomic(
        ResultsDir(root).plan_json,
        {
            "format": FORMAT,
            "preset": doc.get("preset"),
            "sha256": digest(doc),
            "frozen_utc": _now(),
            "plan": doc,
        },
    )
    return []


def resolve(root: Path, doc: dict | None = None) -> tuple[Plan, Status]:
    """The plan a report of `root` decides under (`doc` when given, else the frozen one) and its status."""
    root = Path(root)
    frozen = read_frozen(root)
    if frozen is not None:
        if doc is None or digest(doc) == frozen["sha256"]:
            use = frozen["plan"]
            status = Status("confirmatory", frozen["sha256"], frozen["sha256"], frozen.get("frozen_utc"))
        else:
            use = doc
            status = Status(
                "exploratory",
                digest(doc),
                frozen["sha256"],
                frozen.get("frozen_utc"),
                tuple(changes(frozen["plan"], doc)),
                f"analysed on {_now()} under a plan that differs from the one frozen on "
                f"{frozen.get('frozen_utc')} before the runs",
            )
    elif (legacy := ResultsDir(root).legacy_rule).is_file():
        try:
            ev = json.loads(legacy.read_text())
        except (ValueError, UnicodeDecodeError) as err:
            raise BadInput(f"{legacy}: not valid JSON ({err})") from None
        if not isinstance(ev, dict):
            raise BadInput(f"{legacy}: expected a JSON object (the decision rule)")
        use = from_evidence(ev)
        status = Status(
            "exploratory",
            digest(use),
            None,
            None,
            (),
            f"no analysis plan was frozen before these runs ({legacy.name} holds their rule only); the "
            "claims' metrics and tests are this version's registered ones",
        )
    else:
        use = doc if doc is not None else preset("demo")
        status = Status(
            "exploratory",
            digest(use),
            None,
            None,
            (),
            "no analysis plan was frozen in this results directory",
        )
    try:
        return plan_from(use), status
    except ValueError as err:
        where = ResultsDir(root).plan_json if use is (frozen or {}).get("plan") else "the plan"
        raise BadInput(f"{where}: {err}") from None


def fmt_value(v) -> str:
    if isinstance(v, float) and not math.isfinite(v):
        return str(v)
    return json.dumps(v, ensure_ascii=False, default=str)
