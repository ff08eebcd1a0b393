"""`bertviz-plot results=<dir>` (conf/plot.yaml), on the publish floor (above plots/, which only
draws): every figure the directory supports
(`plots.results.draw_all`), then the report (`report.write_report`) and, with
``wandb.enabled=true``, the W&B media (`wandb_media.log_results`). Bad input: one line, exit 2.
"""

from __future__ import annotations

import logging
from pathlib import Path

from omegaconf import DictConfig, OmegaConf

from bertviz_landscape.cli.command import command
from bertviz_landscape.contracts.errors import BadInput
from bertviz_landscape.plots.results import draw_all
from bertviz_landscape.publish.report import write_report
from bertviz_landscape.publish.wandb_media import log_results

log = logging.getLogger("bertviz_landscape.plots")


def run(cfg: DictConfig) -> dict:
    results = Path(cfg.results)
    if not results.is_dir():
        raise BadInput(f"results={results}: no such directory")
    out = Path(cfg.output) if cfg.get("output") else results / "figures"
    manifest = draw_all(
        results,
        out,
        interactive=bool(cfg.interactive),
        formats=tuple(cfg.formats),
        trajectory_projection=str(cfg.trajectory_projection),
        paraview=bool(cfg.get("paraview", False)),
    )
    for fig in manifest["figures"]:
        log.info("%-14s %s", fig["kind"], ", ".join(fig["files"]))
    if cfg.get("report", True):
        plan = OmegaConf.to_container(cfg.plan, resolve=True) if cfg.get("plan") else None
        md, page = write_report(results, plan)
        log.info("report: %s, %s", md, page)
    if cfg.get("wandb") and cfg.wandb.get("enabled"):
        log_results(results, OmegaConf.to_container(cfg.wandb, resolve=True), cfg.wandb.get("dir") or results)
    return manifest


def run_and_say(cfg: DictConfig) -> dict:
    """`run`, then one line saying how many figures and where."""
    manifest = run(cfg)
    where = cfg.output or Path(cfg.results) / "figures"
    print(f"bertviz-plot: {len(manifest['figures'])} figures in {where}")
    return manifest


main = command("bertviz-plot", "plot", run_and_say)


if __name__ == "__main__":
    main()
