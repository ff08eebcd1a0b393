"""Shards of one grid: finished points written as they go, resumed, and merged into a surface.

All shards of one landscape share a *parts directory* next to the output,
``<output>.parts/<fingerprint>/``, where the fingerprint hashes everything that decides a
point's value (checkpoint hashes, direction recipe, grid, data subset, precision). It holds

``spec.json``
    the surface's metadata (everything but the values), written once;
``directions.h5``
    the direction file (`direction_file`), computed once by the first shard that needs it;
``points-<shard>-of-<num_shards>.jsonl``
    one JSON line per finished point ``{"k", "values"}``, flushed and fsynced before the next
    point starts. A torn last line (a killed job) is ignored on reading.

A (re-)started shard reads every points file in the directory and evaluates only the points
it lacks — so a killed job, re-run, resumes, even with a different number of shards. When
every point is present the shards merge into the surface file (the last shard to finish does
it; ``merge_parts`` does it by hand), and the direction file is placed beside it.
"""

from __future__ import annotations

import json
import math
import os
from pathlib import Path

import numpy as np

from bertviz_landscape.contracts.atomic import atomic_path, open_fd_in_place, write_json_atomic
from bertviz_landscape.contracts.errors import LandscapeError, OutputError
from bertviz_landscape.engine.direction_file import beside
from bertviz_landscape.engine.grid import Axis, Grid
from bertviz_landscape.engine.surface import Surface, write_surface


def parts_dir(output: str | os.PathLike, key: str) -> Path:
    output = Path(output)
    return output.with_name(output.name + ".parts") / key


class PointStore:
    """The finished points of one landscape (all shards), and the writer for one shard."""

    def __init__(self, directory: str | os.PathLike, shard: int = 0, num_shards: int = 1):
        self.directory = Path(directory)
        self.shard, self.num_shards = shard, num_shards

    @property
    def shard_file(self) -> Path:
        return self.directory / f"points-{self.shard:04d}-of-{self.num_shards:04d}.jsonl"

    def write_spec(self, spec: dict) -> None:
        path = self.directory / "spec.json"
        if not path.exists():
            write_json_atomic(path, spec)

    def read_spec(self) -> dict:
        path = self.directory / "spec.json"
        if not path.is_file():
            raise LandscapeError(f"no spec.json in {self.directory}: not a landscape parts directory")
        return json.loads(path.read_text())

    def done(self) -> dict[int, dict[str, float]]:
        """k → values of every finished point in the directory (any shard, any earlier run)."""
        points: dict[int, dict[str, float]] = {}
        for f in sorted(self.directory.glob("points-*.jsonl")):
            for line in f.read_text().splitlines():
                try:
                    row = json.loads(line)
                    points[int(row["k"])] = {k: float(v) for k, v in row["values"].items()}
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue  # a torn line from a killed job
        return points

    def per_example(self) -> dict[int, dict[str, list[float]]]:
        """k → {"<split>_loss": [...], "<split>_correct": [...]} of the finished points that stored
        per-example values (`append(..., per_example=...)`)."""
        points: dict[int, dict[str, list[float]]] = {}
        for f in sorted(self.directory.glob("points-*.jsonl")):
            for line in f.read_text().splitlines():
                try:
                    row = json.loads(line)
                    if "per_example" in row:
                        points[int(row["k"])] = row["per_example"]
                except (json.JSONDecodeError, KeyError, TypeError, ValueError):
                    continue
        return points

    def append(
        self, k: int, values: dict[str, float], per_example: dict[str, list[float]] | None = None
    ) -> None:
        """Append one finished point, fsynced; a full disk is an OutputError naming the file (the
        points before it stay, a torn line is ignored on reading)."""
        try:
            self._append(k, values, per_example)
        except OSError as err:
            raise OutputError(
                f"cannot write {self.shard_file}: {err.strerror or err} (finished points are kept; re-run to "
                "continue)"
            ) from err

    def _append(self, k: int, values: dict[str, float], per_example: dict | None = None) -> None:
        self.directory.mkdir(parents=True, exist_ok=True)
        row = {"k": int(k), "values": values} | ({"per_example": per_example} if per_example else {})
        line = json.dumps(row)  # NaN/Infinity are written as such
        fd = open_fd_in_place(self.shard_file, os.O_RDWR | os.O_APPEND)  # never through a planted link
        try:
            size = os.fstat(fd).st_size
            # a previous run killed mid-line leaves a torn line: start ours on a fresh one
            torn = size > 0 and os.pread(fd, 1, size - 1) != b"\n"
            data = (("\n" if torn else "") + line + "\n").encode()
            while data:
                data = data[os.write(fd, data) :]
            os.fsync(fd)
        finally:
            os.close(fd)


def grid_from_spec(spec: dict) -> Grid:
    g = spec["grid"]
    return Grid(Axis(**g["x"]), Axis(**g["y"]) if "y" in g else None, g.get("name"))


def merge_parts(
    directory: str | os.PathLike, output: str | os.PathLike | None = None, require_complete: bool = True
) -> Path | None:
    """Merge every finished point in `directory` into the surface file.

    Returns the surface path, or None when points are missing and `require_complete` is
    False (raises LandscapeError naming how many are missing otherwise).
    """
    store = PointStore(directory)
    spec = store.read_spec()
    grid = grid_from_spec(spec)
    points = store.done()
    missing = [k for k in range(grid.size) if k not in points]
    if missing:
        if require_complete:
            raise LandscapeError(
                f"cannot merge {directory}: {len(missing)} of {grid.size} points are missing (re-run their "
                "shards)"
            )
        return None
    keys = spec["value_keys"]
    shape = grid.shape  # the surface file's layout: [ny, nx] (rows are y) for 2D
    values = {key: np.full(shape, math.nan) for key in keys}
    for k, row in points.items():
        if k >= grid.size:
            continue
        idx = grid.index(k)  # [j, i]
        for key in keys:
            values[key][idx] = row.get(key, math.nan)
    surface = Surface(grid.x.coordinates, grid.y.coordinates if grid.y else None, values, spec["meta"])
    per_example = store.per_example() if spec.get("per_example") else {}
    if per_example and all(k in per_example for k in range(grid.size)):
        for key in per_example[0]:
            n = len(per_example[0][key])
            arr = np.full((*shape, n), math.nan, dtype=np.float32)
            for k in range(grid.size):
                arr[grid.index(k)] = per_example[k][key]  # grid.index is already the [j, i] of `shape`
            surface.per_example[key] = arr
    output = Path(output or spec["output"])
    directions = Path(directory) / "directions.h5"
    if directions.is_file():
        place_beside(directions, beside(output))
    return write_surface(output, surface)


def place_beside(src: Path, dst: Path) -> None:
    """The direction file next to the surface: a hard link where the file system allows, else a copy."""
    import shutil

    if dst.exists() and dst.stat().st_ino == src.stat().st_ino:
        return
    with atomic_path(dst) as tmp:
        try:
            os.link(src, tmp)
        except OSError:
            shutil.copyfile(src, tmp)
