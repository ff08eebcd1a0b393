"""`AnalyzeRequest`: one analysis as conf/analyze.yaml and conf/analysis/<name>.yaml say it.

The top-level keys (``run``, ``runs``, ``surface``, ``surfaces``, ``output``, ``data``, …) are
conf/analyze.yaml's, with its defaults; ``analysis`` is the options of one analysis, the
`Options` dataclass its spec declares (``SPEC.options``, defaults = its YAML): a name
(``"layers"``), a mapping with or without ``name`` (merged onto that analysis's defaults; no
name: analyze.yaml's default, trajectory) or the options themselves. An unknown keyword, top or
nested, is a TypeError naming the nearest valid one. `from_mapping` takes a composed config's
plain container (the command line: a top-level key nothing reads is dropped — the command's
unused-key check names it —, one of the analysis section is warned about and dropped).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from dataclasses import field
from pathlib import Path
from typing import Any

from bertviz_landscape.analysis import registry
from bertviz_landscape.analysis.common import input_name
from bertviz_landscape.contracts.sections import (
    BadValue,
    Section,
    UnknownKeyword,
    WandbOptions,
    default_output_dir,
    section,
)
from bertviz_landscape.training.data.eval_sets import DataRequest

log = logging.getLogger(__name__)

DEFAULT_ANALYSIS = "trajectory"  # conf/analyze.yaml's defaults list


class OpenOptions(dict):
    """The options of an analysis whose spec declares no `Settings` (a plugin's, a test's toy):
    its mapping as given, read as attributes too."""

    def __getattr__(self, key: str) -> Any:
        try:
            return self[key]
        except KeyError:
            raise AttributeError(key) from None

    def to_dict(self) -> dict:
        return dict(self)


def options_of(name: str) -> type | None:
    """The options dataclass analysis `name` declares (None: it declares none)."""
    return registry.get(name).options


def analysis_options(value: Any, strict: bool = True) -> Any:
    """The options of the analysis `value` names (module docstring); `strict=False` (the command
    line's composed config): a key the options do not have is warned about and dropped."""
    if value is None:
        value = DEFAULT_ANALYSIS
    if isinstance(value, str):
        value = {"name": value}
    if not isinstance(value, Mapping):
        return value
    name = str(value.get("name") or DEFAULT_ANALYSIS)
    kind = options_of(name)
    if kind is None:
        return OpenOptions({**value, "name": name})
    values = {str(k): v for k, v in value.items()}
    if not strict:
        known = set(kind().keys())
        for key in sorted(set(values) - known):
            log.warning("analysis.%s is not used by analysis=%s", key, name)
        values = {k: v for k, v in values.items() if k in known}
    try:
        return kind(**values)
    except UnknownKeyword as err:
        raise err.within("AnalyzeRequest", ("analysis",)) from None
    except BadValue as err:
        raise err.within(("analysis",)) from None


def _text(value: Any) -> str | None:
    return (
        None
        if value in (None, "", "???")
        else str(value)
        if not isinstance(value, os.PathLike)
        else os.fspath(value)
    )


@section
class AnalyzeRequest(Section):
    """One analysis (module docstring); `output` None is conf/analyze.yaml's default name,
    ``<output_dir>/analysis/<run or surface name>_<analysis>.json``."""

    analysis: Any = None  # the options of analysis=<name>; None: trajectory's defaults
    run: str | None = None
    runs: tuple[str, ...] = ()
    surface: str | None = None
    surfaces: tuple[str, ...] = ()
    output: str | None = None
    overwrite: bool = False
    device: str = "auto"
    progress: bool = True
    data: DataRequest = field(default_factory=DataRequest)
    wandb: WandbOptions = field(default_factory=WandbOptions)

    def __post_init__(self) -> None:
        put = lambda key, value: object.__setattr__(self, key, value)  # noqa: E731 (frozen)
        put("analysis", analysis_options(self.analysis))
        for one, many in (("run", "runs"), ("surface", "surfaces")):
            put(one, _text(getattr(self, one)))
            items = getattr(self, many) or ()
            if isinstance(items, (str, os.PathLike)):
                raise BadValue((many,), f"must be a list of paths, got {items!r}")
            put(many, tuple(os.fspath(v) if isinstance(v, os.PathLike) else str(v) for v in items))
        output = _text(self.output)
        if output is None:
            stem = input_name(self.run, self.runs, self.surface, self.surfaces)
            output = str(Path(default_output_dir()) / "analysis" / f"{stem}_{self.analysis.name}.json")
        put("output", output)
        put("device", str(self.device))
        put("overwrite", bool(self.overwrite))
        put("progress", bool(self.progress))

    @property
    def name(self) -> str:
        return str(self.analysis.name)

    @classmethod
    def from_mapping(cls, c: Mapping[str, Any]) -> AnalyzeRequest:
        """The request from a composed conf/analyze.yaml's plain container (resolved)."""
        c = dict(c)
        known = set(cls.__dataclass_fields__)  # another top-level key: the command line warned about it
        values = {k: v for k, v in c.items() if k in known}
        values["analysis"] = analysis_options(values.get("analysis"), strict=False)
        if "data" in values:
            values["data"] = DataRequest.from_config(values["data"] or {})
        if isinstance(values.get("wandb"), Mapping):
            wandb = values["wandb"]
            values["wandb"] = WandbOptions(**{k: v for k, v in wandb.items() if k in WandbOptions().keys()})
        return cls(**values)
