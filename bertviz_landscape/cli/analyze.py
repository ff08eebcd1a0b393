"""`bertviz-analyze` (python -m bertviz_landscape.cli.analyze): the Hydra edge of the analyses.

Composes conf/analyze.yaml (``analysis=<name>`` picks conf/analysis/<name>.yaml), turns it into
one typed `AnalyzeRequest`, looks the analysis up in analysis/registry.py and calls its spec's
adapter with the request, writes the JSON atomically to ``output=`` and, with
``wandb.enabled=true``, puts its numbers in a W&B run's summary
(`publish.wandb_media.log_analysis`: ``analysis/<analysis>/<key>``). Bad input
exits with status 2 and one line naming the problem; no JSON is written.
"""

from __future__ import annotations

from omegaconf import DictConfig, OmegaConf

import bertviz_landscape.analysis  # noqa: F401  (registers the output-name resolver)
from bertviz_landscape.analysis.request import AnalyzeRequest
from bertviz_landscape.cli.command import command
from bertviz_landscape.contracts.config import CONF_DIR
from bertviz_landscape.publish.publisher import analyze_and_log

CONFIG_PATH = CONF_DIR


def run(cfg: DictConfig) -> dict:
    """The config → analysis call, without Hydra's runtime (tests call this with a composed cfg).
    Returns the analysis JSON that was written to `cfg.output`."""
    return run_request(AnalyzeRequest.from_mapping(OmegaConf.to_container(cfg, resolve=True)))


run_request = analyze_and_log  # the typed call (api.py)


main = command("bertviz-analyze", "analyze", run)


if __name__ == "__main__":
    main()
