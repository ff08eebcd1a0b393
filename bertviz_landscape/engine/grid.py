"""The grid of (α, β) coordinates, and how it is split into shards.

A 1D grid has only the x axis (α); a 2D grid adds y (β). `shape` is the surface file's layout,
[ny, nx] (rows are y, as Li et al.'s files and matplotlib read it). Points are numbered
k = i·ny + j ↔ (x[i], y[j]) (the shards' point numbers); shard s of n owns the points
k ≡ s (mod n), which spreads the cheap (near) and expensive (far, non-finite) points evenly.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from bertviz_landscape.contracts.errors import LandscapeError
from bertviz_landscape.contracts.sections import Section, UnknownKeyword, check_keywords, section

MAX_POINTS = 10_000_000  # 1e7 forward passes: far beyond any landscape (the paper's are ~1e3-1e4)
ARRAYS_PER_SURFACE = 8  # float64 arrays of a surface: train/dev loss, error, metrics, accuracy


AXIS_KEYS = ("min", "max", "num")
GRID_KEYS = ("name", "x", "y")


@section
class Axis(Section):
    min: float
    max: float
    num: int

    @classmethod
    def parse(cls, name: str, spec: Any) -> Axis:
        if spec is None:
            raise LandscapeError(f"empty grid: axis {name} is not given (set grid.{name}.min/max/num)")
        try:
            lo, hi, num = spec["min"], spec["max"], spec["num"]
        except (KeyError, TypeError):
            raise LandscapeError(f"grid.{name} needs min, max and num, got {spec!r}") from None
        try:
            lo, hi = float(lo), float(hi)
        except (TypeError, ValueError):
            raise LandscapeError(f"grid.{name}.min/max must be numbers, got {lo!r}, {hi!r}") from None
        if not (np.isfinite(lo) and np.isfinite(hi)):
            raise LandscapeError(f"grid.{name}.min/max must be finite, got {lo}, {hi}")
        if (
            isinstance(num, bool)
            or not isinstance(num, (int, np.integer))
            and not (isinstance(num, float) and num.is_integer())
        ):
            raise LandscapeError(f"grid.{name}.num must be an integer, got {num!r}")
        num = int(num)
        if num < 1:
            raise LandscapeError(f"empty grid: grid.{name}.num = {num} (must be >= 1)")
        if lo >= hi:
            raise LandscapeError(f"grid.{name}.min ({lo}) must be < grid.{name}.max ({hi})")
        return cls(lo, hi, num)

    @property
    def coordinates(self) -> np.ndarray:
        return np.linspace(self.min, self.max, self.num)


@section
class Grid(Section):
    """The grid; its defaults are conf/grid/line.yaml's (`PLANE`: conf/grid/plane.yaml's)."""

    x: Axis = Axis(-0.5, 1.5, 21)
    y: Axis | None = None
    name: str | None = "line"  # the config's name (conf/grid/<name>.yaml): figures are named after it

    def __post_init__(self) -> None:
        for axis_name, axis in (("x", self.x), ("y", self.y)):
            if axis is not None and axis.num < 2:  # a curve of one point has no shape to draw or measure
                raise LandscapeError(
                    f"grid.{axis_name}.num = {axis.num}: a curve or surface needs at least 2 points per axis"
                )
        if self.size > MAX_POINTS:  # refused before a point list or a surface array is allocated
            shape = " × ".join(str(n) for n in self.shape)
            gb = self.size * 8 * ARRAYS_PER_SURFACE / 1e9
            raise LandscapeError(
                f"grid {shape} = {self.size:.3g} points: its arrays alone would take ~{gb:.3g} GB and it "
                f"would need as many forward passes; at most {MAX_POINTS:.0e} points (grid.x.num × "
                "grid.y.num)"
            )

    @classmethod
    def merged(cls, base: Any, values: Mapping[str, Any]) -> Grid:
        """`values` (``{"x": {...}, "y": {...}, "name": ...}``, any part of it) on top of `base`,
        as a YAML override of the grid section would merge; the keys checked as keywords."""
        check_keywords("Grid", values, GRID_KEYS)
        for axis in ("x", "y"):
            if isinstance(values.get(axis), Mapping):
                try:
                    check_keywords("Grid", values[axis], AXIS_KEYS)
                except UnknownKeyword as err:
                    raise err.within(path=(axis,)) from None
        spec = base.to_dict() if isinstance(base, Grid) else {}
        for key, value in values.items():
            old = spec.get(key)
            spec[key] = {**old, **value} if isinstance(old, dict) and isinstance(value, Mapping) else value
        return cls.parse(spec)

    @classmethod
    def parse(cls, spec: Any) -> Grid:
        if spec is None:
            raise LandscapeError("empty grid: no grid given (set grid.x.min/max/num)")
        get = spec.get if hasattr(spec, "get") else (lambda k, d=None: d)
        y = get("y", None)
        if y is not None and hasattr(y, "get"):
            given = [k for k in ("min", "max", "num") if y.get(k) is not None]
            if not given:
                y = None  # the 1D grid's empty y axis
            elif len(given) < 3:
                missing = [f"grid.y.{k}" for k in ("min", "max", "num") if k not in given]
                raise LandscapeError(
                    f"a 2D grid needs grid.y.min, grid.y.max and grid.y.num; {', '.join(missing)} not given"
                )
        name = get("name", None)
        return cls(
            Axis.parse("x", get("x", None)),
            Axis.parse("y", y) if y is not None else None,
            str(name) if name not in (None, "") else None,
        )

    @property
    def two_d(self) -> bool:
        return self.y is not None

    @property
    def shape(self) -> tuple[int, ...]:
        """The values' layout in the surface file: (ny, nx) for 2D, (nx,) for 1D."""
        return (self.y.num, self.x.num) if self.y else (self.x.num,)

    @property
    def size(self) -> int:
        return int(np.prod(self.shape))

    def index(self, k: int) -> tuple[int, ...]:
        """Point k's place in the values (`shape`): (j, i) for 2D, (i,) for 1D."""
        if self.y is None:
            return (int(k),)
        i, j = np.unravel_index(k, (self.x.num, self.y.num))
        return int(j), int(i)

    def coordinate(self, k: int) -> tuple[float, float]:
        idx = self.index(k)
        alpha = float(self.x.coordinates[idx[-1]])
        beta = float(self.y.coordinates[idx[0]]) if self.y else 0.0
        return alpha, beta

    def describe(self) -> dict:
        """The surface file's ``grid`` attribute: name (when given), x and y (when 2D)."""
        out: dict = {"name": self.name} if self.name else {}
        out["x"] = dict(vars(self.x))
        if self.y:
            out["y"] = dict(vars(self.y))
        return out

    def to_dict(self) -> dict:
        """The grid section as conf/grid/*.yaml says it (a 1D grid's y: no axis)."""
        return {"name": self.name, "x": self.x.to_dict(), "y": self.y.to_dict() if self.y else None}

    def points(self) -> dict:
        """The coordinates alone (what decides a point's value; the name does not)."""
        return {k: v for k, v in self.describe().items() if k != "name"}


LINE = Grid()  # conf/grid/line.yaml
PLANE = Grid(Axis(-0.5, 1.5, 21), Axis(-0.5, 1.5, 21), "plane")  # conf/grid/plane.yaml


def check_shard(shard: Any, num_shards: Any) -> tuple[int, int]:
    try:
        s, n = int(shard), int(num_shards)
    except (TypeError, ValueError):
        raise LandscapeError(
            f"shard and num_shards must be integers, got {shard!r}, {num_shards!r}"
        ) from None
    if n < 1:
        raise LandscapeError(f"num_shards must be >= 1, got {n}")
    if not 0 <= s < n:
        raise LandscapeError(f"shard index {s} is outside [0, {n}) (num_shards={n})")
    return s, n


def shard_points(grid: Grid, shard: int, num_shards: int) -> list[int]:
    """The point numbers shard `shard` of `num_shards` evaluates."""
    shard, num_shards = check_shard(shard, num_shards)
    return list(range(shard, grid.size, num_shards))
