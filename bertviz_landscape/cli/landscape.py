"""`bertviz-landscape` (python -m bertviz_landscape.engine): the Hydra edge of the engine.

Composes conf/landscape.yaml, turns it into one typed `LandscapeRequest` and one
`compute_landscape` call (mode=merge only merges), logs the surface to W&B when
`wandb.enabled`. Bad input exits with status 2 and one line naming the problem; no surface
file is written.
"""

from __future__ import annotations

import logging

from omegaconf import DictConfig, OmegaConf

from bertviz_landscape.cli.command import command
from bertviz_landscape.contracts.config import CONF_DIR
from bertviz_landscape.contracts.devices import configure_determinism
from bertviz_landscape.engine.request import LandscapeRequest
from bertviz_landscape.engine.sweep import compute_landscape
from bertviz_landscape.publish.wandb_media import log_surface

log = logging.getLogger("bertviz_landscape.engine")
CONFIG_PATH = CONF_DIR


def run(cfg: DictConfig):
    """The config → engine call, without Hydra's runtime (tests call this with a composed cfg)."""

    if cfg.get("deterministic"):  # before any CUDA work of this job
        configure_determinism(True)
    result = compute_landscape(LandscapeRequest.from_config(cfg))
    if result.surface:
        log.info("surface written: %s (directions: %s)", result.surface, result.direction_file)
        if cfg.get("wandb") and cfg.wandb.get("enabled"):
            log_surface(result.surface, OmegaConf.to_container(cfg, resolve=True))
    else:
        log.info(
            "shard %s/%s done (%d evaluated, %d already present); parts in %s — the last shard merges",
            cfg.shard,
            cfg.num_shards,
            result.evaluated,
            result.skipped,
            result.parts,
        )
    return result


main = command("bertviz-landscape", "landscape", run)


if __name__ == "__main__":
    main()
