"""The analyses, found where they are declared: every module of this package with a ``SPEC``.

An analysis is one module, bertviz_landscape/analysis/<name>.py: its plain typed function
(`trajectory(...)`, `consistency(...)`, ...) that tests call without Hydra, a small
`from_config(cfg) -> dict` adapter, and at its end ``SPEC = AnalysisSpec(name, from_config, ...)``
(analysis/spec.py: what it reads, its report rows, its figures, its claims). Its options are
conf/analysis/<name>.yaml (``bertviz-analyze analysis=<name>``). Nothing else names it: `specs()`
imports the package's modules and collects their specs, and the demo, the analyze entrypoint, the
report, the figures and the W&B summary iterate over them.

`register(spec)` adds an analysis declared elsewhere (a plugin, a test's toy analysis);
`unregister(name)` removes it again.
"""

from __future__ import annotations

import importlib
import logging
import pkgutil

from bertviz_landscape.analysis.spec import AnalysisSpec, ClaimSpec
from bertviz_landscape.contracts.errors import BadInput

log = logging.getLogger(__name__)
PACKAGE = "bertviz_landscape.analysis"

_specs: dict[str, AnalysisSpec] = {}
_unavailable: dict[
    str, str
] = {}  # module name -> why it could not be imported (a missing optional dependency)
_discovered = False


def register(spec: AnalysisSpec) -> AnalysisSpec:
    """Add `spec` under its name (a second spec of one name is an error)."""
    old = _specs.get(spec.name)
    if old is not None and old is not spec:
        raise ValueError(
            f"analysis {spec.name!r} is declared twice ({old.run.__module__}, {spec.run.__module__})"
        )
    _specs[spec.name] = spec
    return spec


def unregister(name: str) -> None:
    _specs.pop(name, None)


def _discover() -> None:
    """Import every module of the analysis package once and register the `SPEC` it declares."""
    global _discovered
    if _discovered:
        return
    _discovered = True
    package = importlib.import_module(PACKAGE)
    for info in sorted(pkgutil.iter_modules(package.__path__), key=lambda m: m.name):
        if info.name.startswith("_") or info.ispkg:
            continue
        try:
            module = importlib.import_module(f"{PACKAGE}.{info.name}")
        except ImportError as err:  # one analysis's optional dependency missing: the others still run
            _unavailable[info.name] = str(err).splitlines()[0] if str(err) else type(err).__name__
            log.warning("analysis module %s not available: %s", info.name, _unavailable[info.name])
            continue
        spec = getattr(module, "SPEC", None)
        if isinstance(spec, AnalysisSpec):
            register(spec)


def specs() -> list[AnalysisSpec]:
    """Every analysis, in the report's order (`AnalysisSpec.order`, then name)."""
    _discover()
    return sorted(_specs.values(), key=lambda s: (s.order, s.name))


def names() -> list[str]:
    return [s.name for s in specs()]


def get(name: str) -> AnalysisSpec:
    """The analysis `name`; a BadInput naming it (and the known ones) otherwise."""
    _discover()
    if name not in _specs:
        why = f"; its module could not be imported: {_unavailable[name]}" if name in _unavailable else ""
        raise BadInput(f"analysis={name!r}: unknown analysis (known: {', '.join(sorted(_specs))}){why}")
    return _specs[name]


def claims() -> list[ClaimSpec]:
    """Every analysis's claims, in the paper's order (`ClaimSpec.number`)."""
    return sorted((c for s in specs() for c in s.claims), key=lambda c: (c.number, c.claim))
