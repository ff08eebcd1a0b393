"""`bertviz-plot results=<dir>` (conf/plot.yaml): every figure the directory supports
(`plots.results.draw_all`), then the report (`report.write_report`) and, with
``wandb.enabled=true``, the W&B media (`wandb_media.log_results`). Bad input: one line, exit 2.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from bertviz_landscape.config import CONF_DIR
from bertviz_landscape.errors import EXIT_BAD_INPUT, BadInput

log = logging.getLogger("bertviz_landscape.plots")


def run(cfg: DictConfig) -> dict:
    from bertviz_landscape.plots.results import draw_all

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
        from bertviz_landscape.report import write_report

        rule = OmegaConf.to_container(cfg.evidence, resolve=True) if cfg.get("evidence") else None
        md, page = write_report(results, rule)
        log.info("report: %s, %s", md, page)
    if cfg.get("wandb") and cfg.wandb.get("enabled"):
        from bertviz_landscape.wandb_media import log_results

        log_results(results, OmegaConf.to_container(cfg.wandb, resolve=True), cfg.wandb.get("dir") or results)
    return manifest


@hydra.main(version_base="1.3", config_path=CONF_DIR, config_name="plot")
def main(cfg: DictConfig):
    try:
        manifest = run(cfg)
        print(
            f"bertviz-plot: {len(manifest['figures'])} figures in {cfg.output or Path(cfg.results) / 'figures'}"
        )
    except BadInput as err:
        print(f"bertviz-plot: error: {err}", file=sys.stderr)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
