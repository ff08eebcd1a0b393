"""`bertviz-analyze` (python -m bertviz_landscape.analysis): the Hydra edge of the analyses.

Composes conf/analyze.yaml (``analysis=<name>`` picks conf/analysis/<name>.yaml), turns it into
one typed `AnalyzeRequest` and calls `analysis.analyze.analyze`: the registry's analysis, its JSON
written atomically to ``output=`` and, with ``wandb.enabled=true``, its numbers in a W&B run's
summary. Bad input exits with status 2 and one line naming the problem; no JSON is written.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

import bertviz_landscape.analysis  # noqa: F401  (registers the output-name resolver)
from bertviz_landscape.analysis.analyze import analyze
from bertviz_landscape.analysis.request import AnalyzeRequest
from bertviz_landscape.cli.command import command
from bertviz_landscape.contracts.config import CONF_DIR

CONFIG_PATH = CONF_DIR
run_request = analyze  # the typed call (api.py)


def run(cfg: DictConfig) -> dict:
    """The config → analysis call, without Hydra's runtime (tests call this with a composed cfg).
    Returns the analysis JSON that was written to `cfg.output`."""
    return analyze(AnalyzeRequest.from_mapping(OmegaConf.to_container(cfg, resolve=True)))


main = command("bertviz-analyze", "analyze", run)


if __name__ == "__main__":
    main()
