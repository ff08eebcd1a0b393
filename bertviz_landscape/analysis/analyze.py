"""One analysis, run and written: what `bertviz-analyze` and the demo's analysis stages call.

`analyze(cfg)` looks the analysis ``cfg.analysis.name`` up in the registry, checks ``cfg.output``
writable before any work, calls its spec's adapter, writes the JSON atomically (an existing JSON
of other inputs is kept unless ``overwrite``) and, with ``wandb.enabled``, puts its numbers in a
W&B run's summary. Returns the analysis JSON.
"""

from __future__ import annotations

import logging

from omegaconf import OmegaConf

from bertviz_landscape.analysis.common import log_to_wandb, prepare_output, write_result
from bertviz_landscape.analysis.registry import get

log = logging.getLogger("bertviz_landscape.analysis")


def analyze(cfg) -> dict:
    """The config → analysis call (a composed analyze config: conf/analyze.yaml)."""
    name = str(cfg.analysis.name)
    spec = get(name)
    output = prepare_output(cfg.get("output"))
    result = spec.run(cfg)
    write_result(output, result, overwrite=bool(cfg.get("overwrite", False)))
    log.info("analysis=%s written: %s", name, output)
    if cfg.get("wandb") and cfg.wandb.get("enabled"):
        options = OmegaConf.to_container(cfg.wandb, resolve=True)
        where = log_to_wandb(result, options, output)
        log.info("W&B run: %s", where)
    return result
