"""`bertviz-analyze` (python -m bertviz_landscape.analysis): the Hydra edge of the analyses.

Composes conf/analyze.yaml (``analysis=<name>`` picks conf/analysis/<name>.yaml), looks the
analysis up in analysis/registry.py and calls its spec's adapter, writes the JSON atomically to
``output=`` and, with ``wandb.enabled=true``, puts its numbers in a W&B run's summary. Bad input
exits with status 2 and one line naming the problem; no JSON is written.
"""

from __future__ import annotations

from omegaconf import DictConfig

import bertviz_landscape.analysis  # noqa: F401  (registers the output-name resolver)
from bertviz_landscape.analysis.analyze import analyze
from bertviz_landscape.cli.command import command
from bertviz_landscape.contracts.config import CONF_DIR

CONFIG_PATH = CONF_DIR


def run(cfg: DictConfig) -> dict:
    """The config → analysis call, without Hydra's runtime (tests call this with a composed cfg).
    Returns the analysis JSON that was written to `cfg.output`."""
    return analyze(cfg)


main = command("bertviz-analyze", "analyze", run)


if __name__ == "__main__":
    main()
