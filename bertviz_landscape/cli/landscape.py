"""`bertviz-landscape` (python -m bertviz_landscape.engine): the Hydra edge of the engine.

Composes conf/landscape.yaml, turns it into one typed `LandscapeRequest` (`from_mapping` of the
composed config's container) and one `compute_landscape` call (mode=merge only merges), logs
the surface to W&B when `wandb.enabled`. Bad input exits with status 2 and one line naming the
problem; no surface file is written.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

from bertviz_landscape.cli.command import command
from bertviz_landscape.contracts.config import CONF_DIR
from bertviz_landscape.engine.request import LandscapeRequest
from bertviz_landscape.engine.sweep import run_landscape
from bertviz_landscape.publish.wandb_media import log_surface

CONFIG_PATH = CONF_DIR


def run(cfg: DictConfig):
    """The config → engine call, without Hydra's runtime (tests call this with a composed cfg)."""

    config = OmegaConf.to_container(cfg, resolve=True)
    return run_request(LandscapeRequest.from_mapping(config), config)


def run_request(req: LandscapeRequest, config: dict | None = None):
    """The landscape of `req` (`engine.sweep.run_landscape`), the surface logged to W&B when
    `wandb.enabled`, with `config`, the composed config, else the request's own."""
    result = run_landscape(req)
    if result.surface and req.wandb.enabled:
        log_surface(result.surface, config if config is not None else req.to_dict())
    return result


main = command("bertviz-landscape", "landscape", run)


if __name__ == "__main__":
    main()
