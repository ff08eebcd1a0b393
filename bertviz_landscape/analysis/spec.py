"""What an analysis is to the rest of the tool: one `AnalysisSpec`, declared in its own module.

Each analysis module (analysis/<name>.py) ends with ``SPEC = AnalysisSpec(...)``; the registry
(analysis/registry.py) finds it there, and every consumer iterates the registry instead of naming
the analysis:

    run         bertviz-analyze analysis=<name>: the request (analysis/request.py) → analysis JSON
    options     its options: a `Settings` dataclass whose defaults are conf/analysis/<name>.yaml's
    reads       what the demo hands it, in this order: its main-task run (``run=``) and which of
                the run's surfaces (``surface=`` the 1D ``line`` along δ1 or the 2D ``plane``)
    matched     a pretrained run also gets the same seed's from-scratch run (``analysis.matched.run=``)
    partner     every run also gets the next seed's run of its arm, cyclically (``analysis.partner.run=``)
    rows        the per-run ``numbers`` the report's tables show, with their labels, in this order
    hidden      numbers the tables never show (flags, settings); any other number follows the rows
    figures     figure names (plots/results.py draws them from this analysis's JSONs)
    claims      the paper's claims decided on its numbers (report/claims.py decides them)
    legacy      the numbers an older JSON of it (without ``numbers``) still gives, from its summary

Figures are names, not functions: plots/ sits above analysis/ in the floors (docs/development.md), so
an analysis cannot import a figure; the figure floor maps the names it declares.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal, NamedTuple

from bertviz_landscape.analysis.measures.evidence import Options

Input = Literal["run", "line", "plane"]  # the demo's main-task run, its 1D curve along δ1, its 2D plane
INPUTS: tuple[str, ...] = ("run", "line", "plane")


@dataclass(frozen=True)
class Row:
    """One row of the report's number tables: a per-run number (analysis JSON ``numbers``)."""

    key: str
    label: str


@dataclass(frozen=True)
class Measure:
    """A number a claim may decide on. ``better``: +1 when the claim says pretrained is higher.
    ``widen``: for a width whose interval may reach the end of its grid (its ``<key>_bounded``
    number is 0.0 then: a lower bound that can only win), the override that widens that grid."""

    key: str
    better: int
    label: str
    fallback: bool = False
    widen: str | None = None


@dataclass(frozen=True)
class ClaimSpec:
    """One of the paper's claims, decided on one analysis's numbers (report/claims.py).

    ``number``: its place among the paper's claims (the abstract's order: the report lists them
    so). ``measures``: the first that every run of both arms has is decided on. ``quoted``:
    (number, label) quoted beside the decision. ``checks``: named checks of report/claims.py that
    this claim also applies (``matched_loss``, ``min_epochs``, ``threshold_reached``).
    ``keeps_plateau_runs``: the claim's number is the optimisation outcome itself, so a run that did
    not beat its majority baseline stays in the comparison (the rule's ``plateau_runs`` applies to
    the others).
    ``analysis``: filled in by the AnalysisSpec that declares the claim."""

    claim: str
    title: str
    number: int
    measures: tuple[Measure, ...]
    supported: str  # the sentence's lead when supported
    contradicted: str
    quoted: tuple[tuple[str, str], ...] = ()
    checks: tuple[str, ...] = ()
    keeps_plateau_runs: bool = False
    analysis: str = ""


Legacy = Callable[
    [dict, dict, Options], dict
]  # (the JSON, its per_run entry, the claims' options) -> numbers


@dataclass(frozen=True)
class AnalysisSpec:
    name: str
    run: Callable[[Any], dict[str, Any]]  # (an AnalyzeRequest) -> the analysis JSON
    reads: tuple[Input, ...] = ("run",)
    matched: bool = False
    partner: bool = False  # paired with the next seed's run of the same arm (``analysis.partner.run=``)
    rows: tuple[Row, ...] = ()
    hidden: tuple[str, ...] = ()
    figures: tuple[str, ...] = ()
    claims: tuple[ClaimSpec, ...] = field(default=())
    legacy: Legacy | None = None
    order: int = 100  # where its rows stand in the report's tables (ascending, then by name)
    options: type | None = None  # its options (contracts.sections.Settings; None: taken as given)

    def __post_init__(self) -> None:
        bad = [r for r in self.reads if r not in INPUTS]
        surfaces = [r for r in self.reads if r != "run"]
        if bad or len(surfaces) > 1 or len(set(self.reads)) != len(self.reads):
            raise ValueError(
                f"analysis {self.name!r}: reads={self.reads} — give 'run' and at most one of 'line', 'plane'"
            )
        object.__setattr__(self, "claims", tuple(replace(c, analysis=self.name) for c in self.claims))

    @property
    def surface(self) -> str | None:
        """Which of the demo's surfaces it reads (``line`` or ``plane``), or None."""
        return next((r for r in self.reads if r != "run"), None)


def finite(v) -> float | None:
    """`v` as a float when it is a finite number, else None."""
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


class SummaryEntry(NamedTuple):
    """One scalar of an analysis JSON's summary: its mean over runs, std (ddof=1) and n
    (`analysis.common.summarize` writes them)."""

    mean: float
    std: float
    n: int


def summary_entry(data: dict, key: str) -> SummaryEntry | None:
    """The summary entry `key` of an analysis JSON (a bare number counts: std 0, n 1), or None when
    it is absent or its mean is not a finite number. The one reader of the summary's entries."""
    entry = (data.get("summary") or {}).get(key)
    if not isinstance(entry, dict):
        entry = {"mean": entry}
    mean = finite(entry.get("mean"))
    if mean is None:
        return None
    return SummaryEntry(mean, float(entry.get("std") or 0.0), int(entry.get("n") or 1))


def summary_mean(data: dict, key: str) -> float | None:
    """The mean of an analysis JSON's summary entry `key` (`summary_entry`), or None."""
    entry = summary_entry(data, key)
    return None if entry is None else entry.mean
