"""The Python API: train a run, compute a 1D curve or a 2D surface, run an analysis, draw the figures.

The same functions the entrypoints call, on the same defaults, so a notebook and the command line
compute the same numbers: `loss_curve` / `loss_surface` build a typed `LandscapeRequest` and
`analyze` an `AnalyzeRequest` (engine/request.py, analysis/request.py: their defaults are
conf/landscape.yaml's and conf/analyze.yaml + conf/analysis/<name>.yaml's) from the keyword
values, and call the commands' plain functions (`cli.landscape.run_request`,
`cli.analyze.run_request`) — no config is composed. `train_run` and `draw` compose conf/train.yaml
and conf/plot.yaml through the cli floor (`cli.compose`), as the commands do. A keyword argument
is a value on top of the defaults (a nested dict for a section:
``grid={"x": {"min": -1, "max": 2, "num": 31}}``, merged onto its default; a string for a config
group picks its option: ``logger="csv"``, ``directions="random"``); an unknown keyword, top-level
or nested, is a TypeError naming the nearest valid one. `overrides` takes command-line style
strings as well (``["data.max_train_samples=256"]``). No Hydra runtime, no working-directory
change::

    from bertviz_landscape import api

    run = api.train_run("runs/sst2", task="sst2", model="distilbert-base-uncased", init="pretrained")
    curve = api.loss_curve("runs/sst2")                          # 1D: J(θ0 + α·δ1), a surface file
    plane = api.loss_surface("runs/sst2", run2="runs/mrpc")      # 2D: the paper's axes
    layers = api.analyze("layers", run="runs/sst2")              # the analysis JSON, as a dict
    figures = api.draw("outputs")                                # every figure the directory supports

`task` is a GLUE task or your own task spec's name (`training/data/sources.py`); `model` a preset of
conf/model/ (``roberta-base``, ``tiny`` …), a hub id or a ``save_pretrained`` directory.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

from omegaconf import OmegaConf

from bertviz_landscape.analysis.request import AnalyzeRequest
from bertviz_landscape.cli import analyze as analysis_entrypoint
from bertviz_landscape.cli import landscape as landscape_entrypoint
from bertviz_landscape.cli import plot as publish
from bertviz_landscape.cli.compose import OPTIONAL_KEYS, compose
from bertviz_landscape.contracts.config import CONF_DIR
from bertviz_landscape.contracts.sections import UnknownKeyword, deep_merge
from bertviz_landscape.engine.grid import PLANE, Grid
from bertviz_landscape.engine.request import LandscapeRequest
from bertviz_landscape.engine.sweep import LandscapeResult
from bertviz_landscape.training.train import train

PathLike = str | os.PathLike


def _preset(group: str, name: str) -> bool:
    return (Path(CONF_DIR) / group / f"{name}.yaml").is_file()


def _task_values(task: str | None) -> tuple[list[str], dict]:
    if task is None:
        return [], {}
    if _preset("task", task):
        return [f"task={task}"], {}
    return [], {"task": {"name": task}}  # your own task: found by name (BVL_TASK_PATH)


def _model_values(model: str | None) -> tuple[list[str], dict]:
    if model is None:
        return [], {}
    if _preset("model", model):
        return [f"model={model}"], {}
    return [], {"model": {"name": Path(str(model)).name, "name_or_path": str(model)}}


def _check_keywords(function: str, config_name: str, values: dict) -> None:
    """A keyword that names no key of conf/`config_name`.yaml is a TypeError naming the nearest
    valid one, as Python's own for a misspelt argument (else ``gird=`` would merge a key that
    nothing reads and compute the default grid)."""
    import difflib

    valid = set(compose(config_name).keys()) | OPTIONAL_KEYS.get(config_name, set())
    for key in values:
        if key not in valid:
            close = difflib.get_close_matches(key, sorted(valid), n=1)
            hint = f"; did you mean {close[0]!r}?" if close else f"; valid: {', '.join(sorted(valid))}"
            raise TypeError(f"{function}() got an unexpected keyword argument {key!r}{hint}")


def _compose(config_name: str, args: list[str], values: dict):
    """compose(config_name) with `args`; a string value for a config group (``logger="none"``,
    ``grid="plane"``) selects that group's option, every other value is merged on top."""
    groups = [f"{k}={v}" for k, v in values.items() if isinstance(v, str) and (Path(CONF_DIR) / k).is_dir()]
    rest = {k: v for k, v in values.items() if not (isinstance(v, str) and (Path(CONF_DIR) / k).is_dir())}
    return compose(config_name, [*args, *groups], rest or None)


def _merge(*dicts: dict) -> dict:
    """The dicts merged, later ones on top (nested dicts merged key by key)."""
    out: dict = {}
    for d in dicts:
        if d:
            out = deep_merge(out, d)
    return out


def _paths(**paths) -> dict:
    return {k: str(v) for k, v in paths.items() if v is not None}


def train_run(
    run_dir: PathLike,
    task: str | None = None,
    model: str | None = None,
    init: str | None = None,
    overrides: Sequence[str] = (),
    **values,
) -> dict:
    """Train one run into `run_dir` (conf/train.yaml, composed through the cli floor's
    `cli.compose` as bertviz-train composes it); returns its final metrics (metrics.json).

    `init`: ``pretrained`` or ``scratch``; None keeps the YAML's default for every argument."""
    task_args, task_vals = _task_values(task)
    model_args, model_vals = _model_values(model)
    args = [*task_args, *model_args, *([f"init={init}"] if init else []), *overrides]
    _check_keywords("train_run", "train", values)
    return train(_compose("train", args, _merge(task_vals, model_vals, values)), run_dir)


def _override_values(overrides: Sequence[str], groups: tuple[str, ...]) -> dict:
    """Command-line style ``key=value`` strings as keyword values (a nested dict); ``group=option``
    for one of `groups` picks that option (``directions=random``)."""
    out: dict = {}
    for text in overrides:
        key, _, value = str(text).partition("=")
        if key in groups and "." not in key:
            out = _merge(out, {key: {"name": value}})
        else:
            out = _merge(out, OmegaConf.to_container(OmegaConf.from_dotlist([text])))
    return out


def _request(function: str, kind: type, values: dict):
    """`kind(**values)`; an unknown keyword is the TypeError of `function`."""
    try:
        return kind(**values)
    except UnknownKeyword as err:
        raise err.within(function) from None


def _landscape(
    function: str, overrides: Sequence[str], values: dict, grid: Grid | None = None
) -> LandscapeResult:
    values = _merge(_override_values(overrides, ("directions",)), values)
    if grid is not None and (values.get("grid") is None or isinstance(values.get("grid"), dict)):
        values["grid"] = Grid.merged(grid, values.get("grid") or {})
    return landscape_entrypoint.run_request(_request(function, LandscapeRequest, values))


def loss_curve(
    run: PathLike | None = None, output: PathLike | None = None, overrides: Sequence[str] = (), **values
) -> LandscapeResult:
    """The 1D curve J(θ0 + α·δ1) of `run` (grid=line, directions=difference unless given);
    ``.surface`` is the surface file. Checkpoints outside runs: ``theta0=…, theta1=…, task=…``."""
    return _landscape("loss_curve", overrides, _merge(_paths(run=run, output=output), values))


def loss_surface(
    run: PathLike | None = None,
    run2: PathLike | None = None,
    output: PathLike | None = None,
    directions: str | None = None,
    overrides: Sequence[str] = (),
    **values,
) -> LandscapeResult:
    """The 2D surface J(θ0 + α·δ1 + β·δ2) of `run` (grid=plane): δ2 from `run2` (the paper's axes),
    or ``directions="random"`` / ``"pca"`` (conf/directions/)."""
    chosen = {"directions": {"name": directions}} if directions else {}
    values = _merge(chosen, _paths(run=run, run2=run2, output=output), values)
    return _landscape("loss_surface", overrides, values, grid=PLANE)


def analyze(
    name: str,
    run: PathLike | None = None,
    runs: Sequence[PathLike] = (),
    surface: PathLike | None = None,
    surfaces: Sequence[PathLike] = (),
    output: PathLike | None = None,
    overrides: Sequence[str] = (),
    **values,
) -> dict:
    """Run analysis `name` (conf/analysis/<name>.yaml: trajectory, consistency, flatness, longtrain,
    layers, …); writes and returns its JSON. Its own options go under ``analysis={...}``."""
    inputs = _paths(run=run, surface=surface, output=output)
    inputs |= {"runs": [str(r) for r in runs]} if runs else {}
    inputs |= {"surfaces": [str(s) for s in surfaces]} if surfaces else {}
    values = _merge(_override_values(overrides, ()), inputs, values)
    options = values.get("analysis") if isinstance(values.get("analysis"), dict) else {}
    values["analysis"] = {**options, "name": name}
    return analysis_entrypoint.run_request(_request("analyze", AnalyzeRequest, values))


def draw(results: PathLike, output: PathLike | None = None, overrides: Sequence[str] = (), **values) -> dict:
    """Every figure the results directory supports (surfaces, analysis JSONs, runs), and the report
    unless ``report=False``; returns the figure manifest (conf/plot.yaml, composed through the cli
    floor's `cli.compose`)."""
    _check_keywords("draw", "plot", values)
    cfg = _compose("plot", list(overrides), _merge(_paths(results=results, output=output), values))
    return publish.run(cfg)
