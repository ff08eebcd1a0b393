"""`bertviz-landscape` (python -m bertviz_landscape.landscape): the Hydra edge of the engine.

Composes conf/landscape.yaml, turns it into one `compute_landscape` call (or `merge_parts`
with mode=merge), logs the surface to W&B when `wandb.enabled`. Bad input exits with status 2
and one line naming the problem; no surface file is written.
"""

from __future__ import annotations

import logging
import sys
from pathlib import Path

import hydra
from omegaconf import DictConfig, OmegaConf

from bertviz_landscape.data.glue import GlueDataError
from bertviz_landscape.landscape.errors import LandscapeError

log = logging.getLogger("bertviz_landscape.landscape")
EXIT_BAD_INPUT = 2


def run(cfg: DictConfig):
    """The config → engine call, without Hydra's runtime (tests call this with a composed cfg)."""
    from bertviz_landscape.landscape.shards import merge_parts
    from bertviz_landscape.landscape.sweep import compute_landscape

    data = OmegaConf.to_container(cfg.data, resolve=True)
    directions = OmegaConf.to_container(cfg.directions, resolve=True)
    grid = OmegaConf.to_container(cfg.grid, resolve=True) if cfg.get("grid") is not None else None
    mode = cfg.get("mode", "compute")
    if mode not in ("compute", "merge"):
        raise LandscapeError(f"mode must be compute or merge, got {mode!r}")
    result = compute_landscape(
        task=cfg.task.name,
        theta0=cfg.theta0,
        theta1=cfg.get("theta1"),
        theta2=cfg.get("theta2"),
        output=cfg.output,
        grid=grid,
        directions=directions,
        data=data,
        shard=cfg.get("shard", 0),
        num_shards=cfg.get("num_shards", 1),
        splits=list(cfg.get("splits", ["train", "dev"])),
        precision=cfg.get("precision", "fp32"),
        use_cache=bool(cfg.get("hidden_state_cache", True)),
        device=cfg.get("device", "auto"),
        progress=bool(cfg.get("progress", True)),
        evaluate=(mode == "compute"),
    )
    if mode == "merge":
        surface = merge_parts(result.parts, result.output)
        result.surface = surface
    if result.surface:
        log.info("surface written: %s", result.surface)
        if cfg.get("wandb") and cfg.wandb.get("enabled"):
            from bertviz_landscape.landscape.wandb_media import log_surface

            log_surface(result.surface, OmegaConf.to_container(cfg, resolve=True))
    else:
        log.info("shard %s/%s done (%d evaluated, %d already present); parts in %s — the last shard merges",
                 cfg.shard, cfg.num_shards, result.evaluated, result.skipped, result.parts)
    return result


# "../../conf" as an absolute path: the same directory whether started as the console script
# or as `python -m bertviz_landscape.landscape` (where Hydra would look for a `conf` module)
CONFIG_PATH = str(Path(__file__).resolve().parent / "../../conf")


@hydra.main(version_base="1.3", config_path=CONFIG_PATH, config_name="landscape")
def main(cfg: DictConfig):
    try:
        return run(cfg)
    except (LandscapeError, GlueDataError) as err:
        print(f"bertviz-landscape: error: {err}", file=sys.stderr)
        log.error("%s", err)
        sys.exit(EXIT_BAD_INPUT)


if __name__ == "__main__":
    main()
