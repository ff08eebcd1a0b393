"""The results directory: the one place that names every path inside a directory of results.

`make demo` (pipeline/demo.py) writes one, `bertviz-plot` (publish/publisher.py) draws and
reports on any directory of results, the report (publish/report/) and the W&B media
(publish/wandb_media.py) read it — all through `ResultsDir`. Layout::

    runs/<task>_<init>_seed<N>/        a training run (its inside: bertviz_landscape.contracts.rundir)
    surfaces/<name>.h5                 a surface file (bertviz_landscape.engine.surface)
    analysis/<analysis>_<name>.json    an analysis JSON (bertviz_landscape.analysis.common)
    figures/                           the figures (bertviz_landscape.plots.results.draw_all) …
    figures/figures.json               … and their catalogue, in any figures directory
    figures/claims/claim_<claim>_<task>.png   each decided claim's figure (the report's)
    wandb/                             the offline W&B runs of the results (and logged.json)
    wandb/logged.json                  what the W&B media logged (publish/wandb_media.py)
    plan.yaml, plan.json               the analysis plan frozen before the first run (report/plan.py)
    evidence.json                      an older directory's decision rule (read, never written)
    lr_sweep.json                      a from-scratch learning-rate sweep and its chosen rate
    report_notes.json                  the preset's notes for its report
    report.md, report.html             the report (publish/report/writer.py)
    results.md                         the report's results section alone
    claims.json                        every verdict as data
    demo.log                           the demo's stages' own output
    .stages/<stage>.json               the demo's record of each finished stage

Paths keep the directory as given (never resolved): they appear in messages and records.
"""

from __future__ import annotations

import os
from pathlib import Path

from bertviz_landscape.contracts.names import confine

RUNS = "runs"
SURFACES = "surfaces"
ANALYSIS = "analysis"
FIGURES = "figures"
CATALOGUE = "figures.json"  # in any figures directory, the default one or `bertviz-plot output=`
CLAIM_FIGURES = "claims"  # below the figures directory
CLAIM_FIGURE = "claim_{claim}_{task}.png"
WANDB = "wandb"
LOGGED = "logged.json"  # below wandb/
PLAN_YAML = "plan.yaml"
PLAN_JSON = "plan.json"
LEGACY_RULE = "evidence.json"
SWEEP = "lr_sweep.json"
NOTES = "report_notes.json"
REPORT_MD = "report.md"
REPORT_HTML = "report.html"
RESULTS_MD = "results.md"
CLAIMS = "claims.json"
DEMO_LOG = "demo.log"
STAGES = ".stages"
# the subdirectories whose files the numbers come from (the late stages stamp them)
INPUTS = (SURFACES, ANALYSIS, RUNS)


class ResultsDir:
    """Paths inside one results directory (`ResultsDir(path).catalogue`, ...)."""

    def __init__(self, path: str | os.PathLike) -> None:
        self.root = Path(path)

    def __repr__(self) -> str:
        return f"ResultsDir({str(self.root)!r})"

    def __fspath__(self) -> str:
        return str(self.root)

    # --- what the stages write -------------------------------------------------------------
    @property
    def runs(self) -> Path:
        return self.root / RUNS

    def run(self, name: str) -> Path:
        """The training run `<task>_<init>_seed<N>`."""
        return self.runs / name

    @property
    def surfaces(self) -> Path:
        return self.root / SURFACES

    def surface(self, name: str) -> Path:
        return self.surfaces / f"{name}.h5"

    @property
    def analysis(self) -> Path:
        return self.root / ANALYSIS

    def analysis_json(self, analysis: str, name: str) -> Path:
        return self.analysis / f"{analysis}_{name}.json"

    # --- figures ---------------------------------------------------------------------------
    @property
    def figures(self) -> Path:
        return self.root / FIGURES

    def figures_dir(self, out: str | os.PathLike | None = None) -> Path:
        """Where the figures go: `out`, default `figures/`. One inside the results directory must
        stay inside it: a `figures` that is a link to a directory elsewhere is refused (a
        ConfinementError naming it), not followed."""
        where = Path(out) if out else self.figures
        if where.is_relative_to(self.root):
            confine(where, self.root, f"figures directory {where}")
        return where

    @property
    def catalogue(self) -> Path:
        """The figures catalogue of the default figures directory (figures/figures.json)."""
        return self.figures / CATALOGUE

    @staticmethod
    def catalogue_in(figures: str | os.PathLike) -> Path:
        """The catalogue inside the figures directory `figures`, wherever it is."""
        return Path(figures) / CATALOGUE

    def claim_figure(self, claim: str, task: str) -> Path:
        return self.figures_dir() / CLAIM_FIGURES / CLAIM_FIGURE.format(claim=claim, task=task)

    # --- W&B -------------------------------------------------------------------------------
    @property
    def wandb(self) -> Path:
        return self.root / WANDB

    @property
    def logged(self) -> Path:
        return self.wandb / LOGGED

    # --- the plan and the report -----------------------------------------------------------
    @property
    def plan_yaml(self) -> Path:
        return self.root / PLAN_YAML

    @property
    def plan_json(self) -> Path:
        return self.root / PLAN_JSON

    @property
    def legacy_rule(self) -> Path:
        return self.root / LEGACY_RULE

    @property
    def sweep(self) -> Path:
        return self.root / SWEEP

    @property
    def notes(self) -> Path:
        return self.root / NOTES

    @property
    def report_md(self) -> Path:
        return self.root / REPORT_MD

    @property
    def report_html(self) -> Path:
        return self.root / REPORT_HTML

    @property
    def results_md(self) -> Path:
        return self.root / RESULTS_MD

    @property
    def claims(self) -> Path:
        return self.root / CLAIMS

    # --- the demo's own --------------------------------------------------------------------
    @property
    def demo_log(self) -> Path:
        return self.root / DEMO_LOG

    @property
    def stages(self) -> Path:
        return self.root / STAGES
