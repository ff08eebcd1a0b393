"""The five console scripts: the command line checked first, then the command's module loaded.

``bertviz-train`` and the others (pyproject.toml ``[project.scripts]``) start here so that a typo,
an unknown config option or ``--help`` is answered from the YAML alone (`cli.check_command_line`:
Hydra and OmegaConf, no torch), in about a second instead of after the 5–15 s import of torch,
transformers and Lightning. A command line that passes is handed, unchanged (a task spec's
``task=<name>`` becomes ``task.name=<name>``), to the command's Hydra entrypoint.
"""

from __future__ import annotations

import sys
from collections.abc import Callable

from bertviz_landscape.cli.command import check_command_line


def _launch(program: str, config_name: str, load: Callable[[], Callable[[], object]]) -> None:
    sys.argv = [sys.argv[0], *check_command_line(program, config_name, sys.argv[1:])]
    load()()


def _train():
    from bertviz_landscape.cli.train import main  # start-up time: torch loads after the check

    return main


def _landscape():
    from bertviz_landscape.cli.landscape import main  # start-up time: after the check

    return main


def _analyze():
    from bertviz_landscape.cli.analyze import main  # start-up time: after the check

    return main


def _plot():
    from bertviz_landscape.cli.plot import main  # start-up time: after the check

    return main


def _demo():
    from bertviz_landscape.cli.demo import main  # start-up time: after the check

    return main


def train() -> None:
    """bertviz-train (conf/train.yaml)."""
    _launch("bertviz-train", "train", _train)


def landscape() -> None:
    """bertviz-landscape (conf/landscape.yaml)."""
    _launch("bertviz-landscape", "landscape", _landscape)


def analyze() -> None:
    """bertviz-analyze (conf/analyze.yaml)."""
    _launch("bertviz-analyze", "analyze", _analyze)


def plot() -> None:
    """bertviz-plot (conf/plot.yaml)."""
    _launch("bertviz-plot", "plot", _plot)


def demo() -> None:
    """bertviz-demo (conf/demo.yaml)."""
    _launch("bertviz-demo", "demo", _demo)
