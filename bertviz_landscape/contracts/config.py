"""The project's configs: where they are, and the resolvers their YAML uses (plain OmegaConf).

`CONF_DIR`: env ``BVL_CONF_DIR``, else ``conf/`` of a source checkout (editable install), else
the copy shipped inside the installed package (``bertviz_landscape/conf``, mapped from the
top-level ``conf/`` by pyproject.toml) — so a plain ``pip install .`` finds its configs from
any directory.

Composing them (Hydra) is the cli floor's: `cli.compose`.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from omegaconf import OmegaConf

_PACKAGE = Path(__file__).resolve().parents[1]  # bertviz_landscape/


def _find_conf_dir() -> str:
    if os.environ.get("BVL_CONF_DIR"):
        return str(Path(os.environ["BVL_CONF_DIR"]).resolve())
    for candidate in (_PACKAGE.parent / "conf", _PACKAGE / "conf"):
        if (candidate / "train.yaml").is_file():
            return str(candidate)
    raise FileNotFoundError(
        f"bertviz_landscape: no configs found (looked in {_PACKAGE.parent / 'conf'} and "
        f"{_PACKAGE / 'conf'}); set BVL_CONF_DIR"
    )


CONF_DIR = _find_conf_dir()


def run_name(run: Any = None, checkpoint: Any = None, task: Any = None) -> str:
    """A name for outputs made from a run: `<task>_<init>_seed<seed>` of the run (given, or the
    run holding `checkpoint`), else the task's name."""
    from bertviz_landscape.contracts.rundir import RunDir  # start-up time: rundir imports torch

    for candidate in (run, checkpoint):
        if candidate in (None, "", "???"):
            continue
        rd = RunDir(candidate) if RunDir.is_run(candidate) else RunDir.of_checkpoint(candidate)
        if rd is not None and RunDir.is_run(rd.root):
            return rd.name
    return str(task) if task not in (None, "") else "landscape"


def register_resolvers() -> None:
    if not OmegaConf.has_resolver("bvl.run_name"):
        OmegaConf.register_new_resolver("bvl.run_name", run_name)


register_resolvers()
