"""A landscape request: typed, validated once, built from the composed config.

Defaults live only in YAML (conf/landscape.yaml and its groups); `LandscapeRequest.from_config`
turns a composed config into typed objects and checks everything that needs no file, and
`resolve_runs` fills in what the run directories say (θ0/θ1 from ``run=``, θ2 from ``run2=``,
the task and ``max_length`` from the run's config). `landscape_request(**values)` composes the
YAML defaults with `values` for callers outside Hydra (tests, analyses).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

from omegaconf import DictConfig, OmegaConf

from bertviz_landscape.contracts.config import compose
from bertviz_landscape.contracts.errors import LandscapeError
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.engine.evaluator import PRECISIONS
from bertviz_landscape.engine.grid import Grid, check_shard
from bertviz_landscape.training.data.eval_sets import DataRequest
from bertviz_landscape.training.data.tasks import get_task

log = logging.getLogger(__name__)

RECIPES = ("difference", "random", "pca")
SPLITS = ("train", "dev")
MODES = ("compute", "merge")
BIAS_AND_NORM = ("include", "exclude")
NORMALIZATIONS = ("filter", "layer", "none")
CENTERS = ("theta0", "theta1", "theta2")
SCALES = ("delta", "unit")

# the keys each recipe reads (conf/directions/<recipe>.yaml); anything else is a typo
RECIPE_KEYS = {
    "difference": {"name", "params", "bias_and_norm", "rescale_y", "file"},
    "random": {"name", "params", "bias_and_norm", "normalization", "seed", "center", "file"},
    "pca": {"name", "params", "bias_and_norm", "run_dir", "scale", "center", "file"},
}


def _path(value) -> Path | None:
    return None if value in (None, "", "???") else Path(str(value)).expanduser().resolve()


@dataclass(frozen=True)
class DirectionsRequest:
    """How δ1 (and δ2) are made: one recipe and its parameters (None where it has none)."""

    name: str
    params: tuple[str, ...]
    bias_and_norm: str
    rescale_y: bool = False
    normalization: str | None = None
    seed: int | None = None
    center: str = "theta0"
    run_dir: Path | None = None
    scale: str | None = None
    file: Path | None = None

    @classmethod
    def from_config(cls, d: dict) -> DirectionsRequest:
        name = d.get("name")
        if name not in RECIPES:
            raise LandscapeError(f"unknown direction recipe {name!r}; expected one of {RECIPES}")
        for key in sorted(set(d) - RECIPE_KEYS[name]):
            log.warning(
                "directions.%s is not used by the %s recipe (its keys: %s)",
                key,
                name,
                ", ".join(sorted(RECIPE_KEYS[name])),
            )
        params = d.get("params", "all")
        params = (params,) if isinstance(params, str) else tuple(str(p) for p in (params or ["all"]))
        if d.get("bias_and_norm") not in BIAS_AND_NORM:
            raise LandscapeError(
                f"directions.bias_and_norm must be include or exclude, got {d.get('bias_and_norm')!r}"
            )
        center = d.get("center", "theta0")
        if center not in CENTERS:
            raise LandscapeError(f"directions.center must be one of {CENTERS}, got {center!r}")
        if name == "random" and d.get("normalization") not in NORMALIZATIONS:
            raise LandscapeError(
                f"directions.normalization must be one of {NORMALIZATIONS}, got {d.get('normalization')!r}"
            )
        if name == "pca" and d.get("scale") not in SCALES:
            raise LandscapeError(f"directions.scale must be one of {SCALES}, got {d.get('scale')!r}")
        seed = d.get("seed")
        return cls(
            name=name,
            params=params,
            bias_and_norm=d["bias_and_norm"],
            rescale_y=bool(d.get("rescale_y", False)),
            normalization=d.get("normalization"),
            seed=None if seed is None else int(seed),
            center=center,
            run_dir=_path(d.get("run_dir")),
            scale=d.get("scale"),
            file=_path(d.get("file")),
        )

    def describe(self) -> dict:
        """What decides the directions' values (the direction file's key; `file` excluded)."""
        out = {
            "name": self.name,
            "params": list(self.params),
            "bias_and_norm": self.bias_and_norm,
            "center": self.center,
        }
        if self.name == "difference":
            out["rescale_y"] = self.rescale_y
        if self.name == "random":
            out |= {"normalization": self.normalization, "seed": self.seed}
        if self.name == "pca":
            out |= {"run_dir": str(self.run_dir) if self.run_dir else None, "scale": self.scale}
        return out


@dataclass(frozen=True)
class LandscapeRequest:
    """One landscape, as conf/landscape.yaml says it (its defaults live there only: build it with
    `from_config` or `landscape_request`)."""

    task: str | None
    output: Path
    grid: Grid
    directions: DirectionsRequest
    data: DataRequest
    run: Path | None
    run2: Path | None
    theta0: Path | None
    theta1: Path | None
    theta2: Path | None
    splits: tuple[str, ...]
    shard: int
    num_shards: int
    mode: str
    merge: bool
    overwrite: bool
    precision: str
    hidden_state_cache: bool
    per_example: bool  # also store each point's per-example losses and correctness (surface.py)
    device: str
    progress: bool
    notes: dict = field(default_factory=dict)  # what resolve_runs took from the runs (not from YAML)

    @classmethod
    def from_config(cls, cfg: DictConfig | dict) -> LandscapeRequest:
        c = OmegaConf.to_container(cfg, resolve=True) if isinstance(cfg, DictConfig) else dict(cfg)
        grid = Grid.parse(c.get("grid"))
        shard, num_shards = check_shard(c.get("shard"), c.get("num_shards"))
        precision = c.get("precision")
        if precision not in PRECISIONS:
            raise LandscapeError(f"unknown precision {precision!r}; expected one of {PRECISIONS}")
        mode = c.get("mode")
        if mode not in MODES:
            raise LandscapeError(f"mode must be compute or merge, got {mode!r}")
        splits = tuple(c.get("splits") or ())
        bad = [s for s in splits if s not in SPLITS]
        if bad or not splits:
            raise LandscapeError(f"splits must be a non-empty subset of {SPLITS}, got {list(splits)}")
        task = (c.get("task") or {}).get("name") if isinstance(c.get("task"), dict) else c.get("task")
        if task is not None:
            try:
                get_task(task)
            except KeyError as err:
                raise LandscapeError(str(err.args[0])) from None
        output = _path(c.get("output"))
        if output is None:
            raise LandscapeError("output is not given: set output=<surface file>.h5")
        return cls(
            task=task,
            output=output,
            grid=grid,
            directions=DirectionsRequest.from_config(c.get("directions") or {}),
            data=DataRequest.from_config(c.get("data") or {}),
            run=_path(c.get("run")),
            run2=_path(c.get("run2")),
            theta0=_path(c.get("theta0")),
            theta1=_path(c.get("theta1")),
            theta2=_path(c.get("theta2")),
            splits=splits,
            shard=shard,
            num_shards=num_shards,
            mode=mode,
            merge=bool(c.get("merge")),
            overwrite=bool(c.get("overwrite")),
            precision=precision,
            hidden_state_cache=bool(c.get("hidden_state_cache")),
            per_example=bool(c.get("per_example")),
            device=str(c.get("device")),
            progress=bool(c.get("progress")),
        )


def resolve_runs(req: LandscapeRequest) -> LandscapeRequest:
    """θ0/θ1 from `run`, θ2 from `run2`, the task and max_length from the run's config; then
    the checks that need them. Explicit checkpoints win over the run's; a task other than the
    run's is an error."""

    theta0, theta1, theta2, task, notes = req.theta0, req.theta1, req.theta2, req.task, {}
    run = RunDir.open(req.run, "run", LandscapeError) if req.run else None
    if run is not None:
        theta0 = theta0 or run.theta0
        theta1 = theta1 or run.theta1
    if req.run2:
        theta2 = theta2 or RunDir.open(req.run2, "run2", LandscapeError).theta1
    # the run the checkpoints come from (for the task, max_length and PCA snapshots)
    source = (
        run
        or (RunDir.of_checkpoint(theta1) if theta1 else None)
        or (RunDir.of_checkpoint(theta0) if theta0 else None)
    )
    told = source if source is not None and RunDir.is_run(source.root) else None  # a run says its task
    run_task = told.task() if told is not None else None
    if task is None:
        if run_task is None:
            raise LandscapeError(
                "task is not given and no run says it: set task=<mrpc|rte|stsb|sst2> or run=<run dir>"
            )
        task, notes["task"] = run_task, f"from run {source.root}"
    elif run_task is not None and task != run_task:
        raise LandscapeError(
            f"task={task} but run {source.root} was trained on {run_task} (drop task= or give the matching "
            "run)"
        )
    directions = req.directions
    if directions.name == "pca" and directions.run_dir is None:
        if source is None:
            raise LandscapeError(
                "pca directions need the run with snapshots: set run=<run dir> or directions.run_dir=<run "
                "dir>"
            )
        directions = replace(directions, run_dir=source.root)
    if theta1 is None and directions.name in ("difference", "pca"):
        raise LandscapeError(
            f"{directions.name} directions need theta1 (the trained checkpoint): set run=<run dir> or "
            "theta1=<checkpoint>"
        )
    if directions.name == "difference" and req.grid.two_d and theta2 is None and directions.file is None:
        raise LandscapeError(
            "a 2D difference surface needs theta2 (θ0 trained on another task): set run2=<run dir> or "
            "theta2=<checkpoint>"
        )
    if theta0 is None:
        raise LandscapeError(
            "checkpoint theta0 is not given (set run=<run dir> or theta0=<checkpoint directory>)"
        )
    data = req.data
    if data.max_length is None:
        run_len = told.max_length() if told is not None else None
        if run_len is None:
            raise LandscapeError(
                "data.max_length is not given and no run config says it: set data.max_length=<n> or run=<run "
                "dir>"
            )
        data, notes["max_length"] = (
            replace(data, max_length=int(run_len)),
            f"{run_len} from run {source.root}",
        )
    return replace(
        req,
        task=task,
        theta0=theta0,
        theta1=theta1,
        theta2=theta2,
        data=data,
        directions=directions,
        notes=notes,
    )


def landscape_request(overrides: Sequence[str] = (), **values: Any) -> LandscapeRequest:
    """The request the entrypoint would build from conf/landscape.yaml, with command-line style
    `overrides` and keyword `values` (nested dicts for grid/directions/data) on top.

    >>> landscape_request(run="outputs/runs/mrpc", grid={"x": {"min": 0, "max": 1, "num": 3}}, progress=False)
    """

    overrides = list(overrides)
    directions = values.get("directions")
    if isinstance(directions, dict) and "name" in directions:
        overrides.append(f"directions={directions['name']}")
    grid = values.get("grid")
    if isinstance(grid, dict) and grid.get("y") is not None:
        overrides.append("grid=plane")
    if isinstance(values.get("task"), str):
        overrides.append(f"task={values.pop('task')}")
    for key in ("theta0", "theta1", "theta2", "run", "run2", "output"):
        if values.get(key) is not None:
            values[key] = str(values[key])
    if isinstance(values.get("splits"), (list, tuple)):
        values["splits"] = list(values["splits"])
    cfg = compose("landscape", overrides, values)
    return LandscapeRequest.from_config(cfg)
