"""The publisher of a results directory: its figures, its report and its W&B media, in that order
(what `bertviz-plot` does, as plain functions the pipeline calls without the command line).

`publish(results, ...)` draws every figure the directory supports (`plots.results.draw_all`:
the figures and their catalogue, ``figures/figures.json`` or ``<output>/figures.json``), then
writes the report (`write_report`) and, with ``wandb["enabled"]``, logs the W&B media
(`log_results`). The report and the W&B media draw nothing: they read the catalogue, and
`write_report` / `log_results` here draw the figures first when it is missing — and
`write_report` draws each decided claim's figure (`plots.claims.claim_figure`,
``figures/claims/claim_<claim>_<task>.png``) before the report names it.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from bertviz_landscape.analysis.analyze import analyze
from bertviz_landscape.analysis.request import AnalyzeRequest
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.contracts.resultsdir import ResultsDir
from bertviz_landscape.plots.claims import claim_figure
from bertviz_landscape.plots.results import draw_all
from bertviz_landscape.publish import wandb_media
from bertviz_landscape.publish.report.writer import build_report, claim_figure_link, write_files

log = logging.getLogger("bertviz_landscape.plots")


def analyze_and_log(req: AnalyzeRequest) -> dict:
    """One analysis: its JSON (`analysis.analyze.analyze`) and, with ``req.wandb.enabled``, its
    numbers in a W&B run's summary (the one W&B writer); returns the analysis JSON. What
    `bertviz-analyze`, the Python API and the demo's analysis stages call."""
    result = analyze(req)
    if req.wandb.enabled:
        where = wandb_media.log_analysis(result, req.wandb.to_dict(), req.output)
        log.info("W&B run: %s", where)
    return result


def catalogue(root: str | os.PathLike) -> Path:
    """The figures catalogue of `root`, the figures drawn first (into figures/) when it is missing."""
    path = ResultsDir.catalogue_in(ResultsDir(root).figures_dir())  # a `figures` linked outside: refused
    if not path.is_file():
        draw_all(root, ResultsDir(root).figures)
    return path


def draw_claim_figures(root: str | os.PathLike, verdicts) -> dict[str, str]:
    """Each verdict's figure (the deciding metric per seed) at ``figures/claims/…``:
    "<claim>/<task>" → its path relative to `root`, for the verdicts with a value to draw."""
    drawn = {}
    for v in verdicts:
        png = ResultsDir(root).claim_figure(v.claim, v.task)
        if claim_figure({"verdict": v.verdict, **v.numbers}, v.title, png):
            drawn[f"{v.claim}/{v.task}"] = claim_figure_link(root, png)
    return drawn


def write_report(
    root: str | os.PathLike, plan_doc: dict | None = None, results_copy: str | os.PathLike | None = None
) -> tuple[Path, Path]:
    """The report of `root` (report.md, report.html, results.md — also at `results_copy` — and
    claims.json; publish/report/writer.py), decided under `plan_doc` (else the frozen plan): the
    figures drawn first when their catalogue is missing, the claims' figures drawn from the
    verdicts. Returns (report.md, report.html)."""
    catalogue(root)
    rep = build_report(root, plan_doc)
    rep["claim_figures"] = draw_claim_figures(root, rep["verdicts"])
    return write_files(rep, results_copy)


def log_results(
    root: str | os.PathLike, wandb_cfg: dict | None = None, wandb_dir: str | os.PathLike | None = None
) -> dict:
    """The W&B media of `root` (`wandb_media.log_results`: the catalogue's figure files as images),
    the figures drawn first when their catalogue is missing."""
    catalogue(root)
    return wandb_media.log_results(root, wandb_cfg, wandb_dir)


def publish(
    results: str | os.PathLike,
    output: str | os.PathLike | None = None,
    *,
    interactive: bool = True,
    formats: tuple[str, ...] = ("png", "pdf"),
    trajectory_projection: str = "lstsq",
    paraview: bool = False,
    report: bool = True,
    plan: dict | None = None,
    wandb: dict | None = None,
) -> dict:
    """Every figure of `results` into `output` (default its figures/), then, with `report`, the
    report decided under `plan` (else the frozen plan), then, with ``wandb["enabled"]``, the W&B
    media (into ``wandb["dir"]``, default `results`). Returns the figures catalogue. A `results`
    that is not a directory is a BadInput."""
    results = Path(results)
    if not results.is_dir():
        raise BadInput(f"results={results}: no such directory")
    manifest = draw_all(
        results,
        output,
        interactive=interactive,
        formats=tuple(formats),
        trajectory_projection=trajectory_projection,
        paraview=paraview,
    )
    for fig in manifest["figures"]:
        log.info("%-14s %s", fig["kind"], ", ".join(fig["files"]))
    if report:
        md, page = write_report(results, plan)
        log.info("report: %s, %s", md, page)
    if wandb and wandb.get("enabled"):
        log_results(results, wandb, wandb.get("dir") or results)
    return manifest
