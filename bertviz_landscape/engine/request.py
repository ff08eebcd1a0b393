"""A landscape request: typed, with conf/landscape.yaml's defaults, validated on construction.

`LandscapeRequest(**values)` is the request conf/landscape.yaml (with its default groups
grid=line, directions=difference, data=glue) describes, `values` on top: a field's default is the
YAML's (tests/test_requests.py composes the YAML and compares, so the two cannot drift), a nested
section may be a plain mapping merged onto its default (``grid={"x": {...}}``), an unknown keyword
is a TypeError naming the nearest valid one, and a bad value a `LandscapeError` naming its key.
`from_mapping` takes a composed config's plain container (the command line: keys that only the
command reads, ``paths``/``hydra``, are dropped). `resolve_runs` fills in what the run
directories say (θ0/θ1 from ``run=``, θ2 from ``run2=``, the task and ``max_length`` from the
run's config). `landscape_request(**values)` is the request for plain callers (tests, analyses):
a 2D grid (``grid.y`` given) starts from conf/grid/plane.yaml.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import field, replace
from pathlib import Path
from typing import Any

from bertviz_landscape.contracts.config import run_name
from bertviz_landscape.contracts.errors import LandscapeError
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.contracts.sections import (
    Section,
    WandbOptions,
    as_path,
    check_keywords,
    default_output_dir,
    section,
)
from bertviz_landscape.engine.evaluator import PRECISIONS
from bertviz_landscape.engine.grid import LINE, PLANE, Grid, check_shard
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

# each recipe's keys and their defaults (conf/directions/<recipe>.yaml); another key is a typo
RECIPE_DEFAULTS: dict[str, dict[str, Any]] = {
    "difference": {"params": "all", "bias_and_norm": "include", "rescale_y": False, "file": None},
    "random": {
        "params": "all",
        "bias_and_norm": "exclude",
        "normalization": "filter",
        "seed": 0,
        "center": "theta1",
        "file": None,
    },
    "pca": {
        "params": "all",
        "bias_and_norm": "include",
        "run_dir": None,
        "scale": "delta",
        "center": "theta1",
        "file": None,
    },
}
RECIPE_KEYS = {name: {"name", *keys} for name, keys in RECIPE_DEFAULTS.items()}
# what a recipe without the key means by it
UNSET = {
    "rescale_y": False,
    "normalization": None,
    "seed": None,
    "center": "theta0",
    "run_dir": None,
    "scale": None,
}
DIRECTION_KEYS = (
    "name",
    "params",
    "bias_and_norm",
    "rescale_y",
    "normalization",
    "seed",
    "center",
    "run_dir",
    "scale",
    "file",
)

_path = as_path


@section
class DirectionsRequest(Section):
    """How δ1 (and δ2) are made: one recipe (conf/directions/<name>.yaml) and its parameters; a
    key left None takes the recipe's default (None where the recipe has no such key)."""

    name: str = "difference"
    params: Any = None  # a selector or a list of them; stored as a tuple
    bias_and_norm: str | None = None
    rescale_y: bool | None = None
    normalization: str | None = None
    seed: int | None = None
    center: str | None = None
    run_dir: Path | None = None
    scale: str | None = None
    file: Path | None = None

    def __post_init__(self) -> None:
        name = self.name
        if name not in RECIPES:
            raise LandscapeError(f"unknown direction recipe {name!r}; expected one of {RECIPES}")
        own = RECIPE_DEFAULTS[name]
        for key in DIRECTION_KEYS[1:]:
            if getattr(self, key) is None:
                object.__setattr__(self, key, own.get(key, UNSET.get(key)))
        params = self.params
        params = (params,) if isinstance(params, str) else tuple(str(p) for p in (params or ["all"]))
        object.__setattr__(self, "params", params)
        if self.bias_and_norm not in BIAS_AND_NORM:
            raise LandscapeError(
                f"directions.bias_and_norm must be include or exclude, got {self.bias_and_norm!r}"
            )
        if self.center not in CENTERS:
            raise LandscapeError(f"directions.center must be one of {CENTERS}, got {self.center!r}")
        if name == "random" and self.normalization not in NORMALIZATIONS:
            raise LandscapeError(
                f"directions.normalization must be one of {NORMALIZATIONS}, got {self.normalization!r}"
            )
        if name == "pca" and self.scale not in SCALES:
            raise LandscapeError(f"directions.scale must be one of {SCALES}, got {self.scale!r}")
        object.__setattr__(self, "rescale_y", bool(self.rescale_y))
        if self.seed is not None:
            object.__setattr__(self, "seed", int(self.seed))
        object.__setattr__(self, "run_dir", _path(self.run_dir))
        object.__setattr__(self, "file", _path(self.file))

    @classmethod
    def merged(cls, base: Any, values: Mapping[str, Any] | str) -> DirectionsRequest:
        """`values` on top of `base`; another recipe (``{"name": "random", ...}``) starts from that
        recipe's defaults, as ``directions=random`` picks its YAML."""
        if isinstance(values, str):
            values = {"name": values}
        check_keywords("DirectionsRequest", values, DIRECTION_KEYS)
        if isinstance(base, cls) and values.get("name", base.name) == base.name:
            return replace(base, **values)
        return cls(**values)

    @classmethod
    def from_config(cls, d: Mapping[str, Any]) -> DirectionsRequest:
        """From a composed directions section: a key the recipe does not read is warned about."""
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
        if d.get("bias_and_norm") not in BIAS_AND_NORM:  # a section names it: null is no default
            raise LandscapeError(
                f"directions.bias_and_norm must be include or exclude, got {d.get('bias_and_norm')!r}"
            )
        return cls(**{k: d.get(k) for k in DIRECTION_KEYS if k in RECIPE_KEYS[name]})

    from_mapping = from_config

    def to_dict(self) -> dict:
        """The directions section as conf/directions/<name>.yaml says it (the recipe's keys)."""
        out = super().to_dict()
        out["params"] = self.params[0] if len(self.params) == 1 else list(self.params)
        return {k: v for k, v in out.items() if k in RECIPE_KEYS[self.name]}

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


@section(sections={"directions": DirectionsRequest})
class LandscapeRequest(Section):
    """One landscape, as conf/landscape.yaml says it (module docstring): every field's default is
    the YAML's; `output` None is the YAML's default name,
    ``<output_dir>/surfaces/<run name>_<recipe>_<grid>.h5``."""

    task: str | None = None  # None: the run's task
    output: Path | None = None
    grid: Grid = LINE
    directions: DirectionsRequest = DirectionsRequest()
    data: DataRequest = field(default_factory=DataRequest)
    run: Path | None = None
    run2: Path | None = None
    theta0: Path | None = None
    theta1: Path | None = None
    theta2: Path | None = None
    splits: tuple[str, ...] = ("train", "dev")
    shard: int = 0
    num_shards: int = 1
    mode: str = "compute"
    merge: bool = True
    overwrite: bool = False
    precision: str = "fp32"
    hidden_state_cache: bool = True
    per_example: bool = False  # also store each point's per-example losses and correctness (surface.py)
    device: str = "auto"
    deterministic: bool = False  # the command's: torch.use_deterministic_algorithms (cli/landscape.py)
    progress: bool = True
    wandb: WandbOptions = field(default_factory=WandbOptions)  # the command's: log the surface
    notes: dict = field(default_factory=dict)  # what resolve_runs took from the runs (not from YAML)

    def __post_init__(self) -> None:
        put = lambda key, value: object.__setattr__(self, key, value)  # noqa: E731 (frozen)
        if isinstance(self.grid, str):
            put("grid", {"line": LINE, "plane": PLANE}.get(self.grid) or self._bad_grid(self.grid))
        if isinstance(self.directions, str):
            put("directions", DirectionsRequest(name=self.directions))
        if not isinstance(self.grid, Grid):
            raise LandscapeError(f"grid must be a grid section (x, y, name), got {self.grid!r}")
        shard, num_shards = check_shard(self.shard, self.num_shards)
        put("shard", shard)
        put("num_shards", num_shards)
        if self.precision not in PRECISIONS:
            raise LandscapeError(f"unknown precision {self.precision!r}; expected one of {PRECISIONS}")
        if self.mode not in MODES:
            raise LandscapeError(f"mode must be compute or merge, got {self.mode!r}")
        splits = (self.splits,) if isinstance(self.splits, str) else tuple(self.splits or ())
        bad = [s for s in splits if s not in SPLITS]
        if bad or not splits:
            raise LandscapeError(f"splits must be a non-empty subset of {SPLITS}, got {list(splits)}")
        put("splits", splits)
        task = self.task.get("name") if isinstance(self.task, Mapping) else self.task
        if task is not None:
            try:
                get_task(task)
            except KeyError as err:
                raise LandscapeError(str(err.args[0])) from None
        put("task", task)
        for key in ("run", "run2", "theta0", "theta1", "theta2"):
            put(key, _path(getattr(self, key)))
        output = self.output
        if output is None:
            name = run_name(self.run, self.theta1, task)
            output = (
                Path(default_output_dir()) / "surfaces" / f"{name}_{self.directions.name}_{self.grid.name}.h5"
            )
        output = _path(output)
        if output is None:
            raise LandscapeError("output is not given: set output=<surface file>.h5")
        put("output", output)
        for key in ("merge", "overwrite", "hidden_state_cache", "per_example", "deterministic", "progress"):
            put(key, bool(getattr(self, key)))
        put("device", str(self.device))

    @staticmethod
    def _bad_grid(name: str):
        raise LandscapeError(f"unknown grid {name!r}: line or plane (or a grid section)")

    @classmethod
    def from_mapping(cls, c: Mapping[str, Any]) -> LandscapeRequest:
        """The request from a composed conf/landscape.yaml's plain container (resolved): the
        command-only keys (``paths``, ``hydra``) and any key nothing reads (the command's unused-key
        check names it) dropped, the sections taken as the YAML gives them."""
        c = dict(c)
        known = set(cls().keys()) - {"notes"}  # another key: the command line warned about it
        values = {k: v for k, v in c.items() if k in known}
        if "grid" in values:
            values["grid"] = Grid.parse(values["grid"])
        if "directions" in values:
            values["directions"] = DirectionsRequest.from_config(values["directions"] or {})
        if "data" in values:
            values["data"] = DataRequest.from_config(values["data"] or {})
        if isinstance(values.get("wandb"), Mapping):
            wandb = values["wandb"]
            values["wandb"] = WandbOptions(**{k: v for k, v in wandb.items() if k in WandbOptions().keys()})
        if values.get("output") is None and "output" in c:
            raise LandscapeError("output is not given: set output=<surface file>.h5")
        return cls(**values)

    from_config = from_mapping


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


def landscape_request(**values: Any) -> LandscapeRequest:
    """The request the entrypoint would build from conf/landscape.yaml, with keyword `values`
    (nested dicts for grid/directions/data) on top; a grid with a y axis starts from
    conf/grid/plane.yaml (as ``grid=plane``).

    >>> landscape_request(run="outputs/runs/mrpc", grid={"x": {"min": 0, "max": 1, "num": 3}}, progress=False)
    """

    grid = values.get("grid")
    if isinstance(grid, Mapping) and isinstance(grid.get("y"), Mapping) and "name" not in grid:
        values["grid"] = Grid.merged(PLANE, grid)
    return LandscapeRequest(**values)
