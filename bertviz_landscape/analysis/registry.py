"""The analyses of `bertviz-analyze`: one name → one plain function `fn(cfg) -> dict`.

Each analysis module (bertviz_landscape/analysis/<name>.py) has one plain typed function
(`trajectory(...)`, `consistency(...)`, ...) that tests call without Hydra, plus a small
`from_config(cfg) -> dict` adapter registered here under the name used on the command line
(`bertviz-analyze analysis=<name>`, config group conf/analysis/<name>.yaml). The adapter returns
the analysis JSON (see bertviz_landscape/analysis/common.py for the shared keys); the entrypoint
writes it atomically to `output=` and logs its scalars to W&B.

Registering an analysis: in the module, ``from bertviz_landscape.analysis.registry import register``
and decorate the adapter with ``@register("<name>")``; add the module's name to `MODULES` below
so the entrypoint imports it.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any

from omegaconf import DictConfig

from bertviz_landscape.errors import BadInput

Analysis = Callable[[DictConfig], dict[str, Any]]

# analysis name -> the module defining (and registering) it
MODULES: dict[str, str] = {
    "trajectory": "bertviz_landscape.analysis.trajectory",
    "consistency": "bertviz_landscape.analysis.consistency",
    "flatness": "bertviz_landscape.analysis.flatness",
    "longtrain": "bertviz_landscape.analysis.longtrain",
    "layers": "bertviz_landscape.analysis.layers",
}

REGISTRY: dict[str, Analysis] = {}


def register(name: str) -> Callable[[Analysis], Analysis]:
    def decorate(fn: Analysis) -> Analysis:
        REGISTRY[name] = fn
        return fn

    return decorate


def get(name: str) -> Analysis:
    """The registered analysis `name` (importing its module); a BadInput naming it otherwise."""

    if name not in REGISTRY and name in MODULES:
        importlib.import_module(MODULES[name])
    if name not in REGISTRY:
        raise BadInput(f"analysis={name!r}: unknown analysis (known: {', '.join(sorted(MODULES))})")
    return REGISTRY[name]
