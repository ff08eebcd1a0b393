"""The one skeleton of the five commands (bertviz-train, -landscape, -analyze, -plot, -demo).

    hydra_main = command("bertviz-landscape", "landscape", run)

`command` makes the Hydra entrypoint of conf/<config_name>.yaml (Hydra's own command line:
overrides, ``-m`` multiruns, launchers; the job's name, and so its log file, is the config's
``hydra.job.name``). Every command then does the same: it warns about each config key that
nothing reads (`config.warn_unused_keys`), calls its plain function ``run(cfg)`` — the one tests
call with a composed config — and reports bad input as one line ``bertviz-<cmd>: error: ...`` on
stderr and in the log, exit status 2 (`errors.exit_on_bad_input`). Bad input is a `BadInput`
(also raised inside a config resolver) or one of the command's `user_errors`; anything else is a
bug and keeps its traceback.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import hydra
from omegaconf import DictConfig

from bertviz_landscape.config import CONF_DIR, warn_unused_keys
from bertviz_landscape.errors import exit_on_bad_input


def command(
    program: str,
    config_name: str,
    run: Callable[[DictConfig], Any],
    user_errors: tuple[type[BaseException], ...] = (),
) -> Callable[..., Any]:
    """The Hydra entrypoint `program` over conf/`config_name`.yaml that calls `run(cfg)`."""

    @hydra.main(version_base="1.3", config_path=CONF_DIR, config_name=config_name)
    def main(cfg: DictConfig) -> Any:
        warn_unused_keys(cfg, config_name)
        return exit_on_bad_input(program, run, cfg, errors=user_errors)

    return main
