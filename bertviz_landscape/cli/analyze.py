"""`bertviz-analyze` (python -m bertviz_landscape.analysis): the Hydra edge of the analyses.

Composes conf/analyze.yaml (``analysis=<name>`` picks conf/analysis/<name>.yaml), looks the
analysis up in analysis/registry.py and calls its spec's adapter, writes the JSON atomically to
``output=`` and, with ``wandb.enabled=true``, puts its numbers in a W&B run's summary
(`publish.wandb_media.log_analysis`: ``analysis/<analysis>/<key>``). Bad input
exits with status 2 and one line naming the problem; no JSON is written.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf

import bertviz_landscape.analysis  # noqa: F401  (registers the output-name resolver)
from bertviz_landscape.analysis.common import prepare_output, write_result
from bertviz_landscape.analysis.registry import get
from bertviz_landscape.cli.command import command
from bertviz_landscape.contracts.config import CONF_DIR
from bertviz_landscape.publish.wandb_media import log_analysis

log = logging.getLogger("bertviz_landscape.analysis")
CONFIG_PATH = CONF_DIR


def run(cfg: DictConfig) -> dict:
    """The config → analysis call, without Hydra's runtime (tests call this with a composed cfg).
    Returns the analysis JSON that was written to `cfg.output`."""

    name = str(cfg.analysis.name)
    spec = get(name)
    output = prepare_output(cfg.get("output"))
    result = spec.run(cfg)
    write_result(output, result, overwrite=bool(cfg.get("overwrite", False)))
    log.info("analysis=%s written: %s", name, output)
    if cfg.get("wandb") and cfg.wandb.get("enabled"):
        options = OmegaConf.to_container(cfg.wandb, resolve=True)
        where = log_analysis(result, options, output)
        log.info("W&B run: %s", where)
    return result


main = command("bertviz-analyze", "analyze", run)


if __name__ == "__main__":
    main()
