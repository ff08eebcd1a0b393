"""The surface file: one HDF5 file per landscape, self-describing, in Li et al.'s key names.

Datasets
    ``xcoordinates`` [nx], ``ycoordinates`` [ny] (2D only);
    ``{train,dev}_loss``, ``{train,dev}_<metric>`` (e.g. ``dev_accuracy``, ``dev_f1``),
    ``{train,dev}_error`` (1 − primary metric), ``{train,dev}_loss_stderr`` (standard error of
    the mean loss over the examples, when the engine recorded it), each [nx] (1D) or
    **[ny, nx] (2D), ``Z[j, i] ↔ (x[i], y[j])``: rows are y** — what matplotlib's
    ``contour(x, y, Z)`` and Li et al.'s ``plot_2D.py`` read. Non-finite values are stored as
    they came (NaN/inf).
    Li et al.'s alias keys are written too, so their ``plot_1D.py``/``plot_2D.py`` read our
    files: ``test_loss`` (= ``dev_loss``); where the task has accuracy ``train_acc`` and
    ``test_acc`` in **percent** (as Li stores them); ``train_err`` and ``test_err``
    (= 100 · ``train_error`` / ``dev_error``, percent: Li's error is 100 − accuracy, ours
    1 − primary metric, so for F1/correlation tasks it is 100·(1 − that metric)).
Group ``per_example`` (optional; landscape ``per_example=true``)
    ``{train,dev}_loss`` [ny, nx, n] (1D: [nx, n]) float32: each point's per-example task losses,
    and for classification ``{train,dev}_correct`` (1.0 / 0.0: the prediction was right), the
    examples in the split's fixed evaluation order (the same at every point: the `EvalSet`'s
    length-sorted order). What a bootstrap over examples needs (analysis/consistency.py); the mean
    over the last axis of ``train_loss`` is the ``train_loss`` dataset. Read into `Surface.per_example`.
Attributes
    ``format`` ("bertviz-surface/2"), ``layout`` ("yx": the sentence above), ``li_aliases``
    (JSON list of the alias keys), ``task``, ``primary_metric``, ``dimensions`` (1|2) and JSON
    strings ``directions`` (recipe, centre, norms, cosine, per-layer norms, explained variance,
    the direction file), ``checkpoints`` (role → path, sha256), ``data`` (splits, subset
    sizes, seed), ``grid``, ``evaluation`` (precision, cache).

`minimum_on_edge(surface, key)` says when the lowest value lies on the grid's edge (the grid
cropped the basin) and which ``grid.*`` override widens it. `write_vts(surface, path)` exports a
2D surface as a VTK structured grid (``.vts``, through pyvista, optional: ``pip install pyvista``)
that ParaView opens, one point array per value, right for non-square grids (Li et al.'s
``h52vtp.py`` assumes nx = ny).

`load_surface` reads a file only when it refers to nothing outside itself (landscape/h5file.py:
no external storage, virtual dataset, external or soft link). It reads this layout, our older
"bertviz-surface/1" files (stored [i, j] ↔ (x[i], y[j]); transposed on reading) and Li et al.'s
own files (``train_loss``/``train_acc``/``test_loss``/``test_acc``, accuracies in percent,
mapped to ``dev_*`` and fractions).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

from bertviz_landscape.contracts.atomic import atomic_path
from bertviz_landscape.contracts.errors import LandscapeError
from bertviz_landscape.contracts.h5file import open_self_contained

FORMAT = "bertviz-surface/2"
LAYOUT = "yx"  # 2D arrays are [ny, nx]: Z[j, i] ↔ (x[i], y[j])
JSON_ATTRS = ("directions", "checkpoints", "data", "grid", "evaluation", "li_aliases")


@dataclass
class Surface:
    x: np.ndarray
    y: np.ndarray | None
    values: dict[str, np.ndarray]  # key (e.g. "dev_loss") → array [nx] (1D) or [ny, nx] (2D)
    meta: dict = field(default_factory=dict)  # task, primary_metric, and the JSON_ATTRS
    per_example: dict[str, np.ndarray] = field(default_factory=dict)  # the optional per_example group

    @property
    def two_d(self) -> bool:
        return self.y is not None

    @property
    def shape(self) -> tuple[int, ...]:
        return (len(self.y), len(self.x)) if self.two_d else (len(self.x),)

    def __getitem__(self, key: str) -> np.ndarray:
        return self.values[key]

    def __contains__(self, key: str) -> bool:
        return key in self.values

    def keys(self) -> list[str]:
        return list(self.values)

    def at(self, key: str, alpha: float, beta: float | None = None) -> float:
        """The value of `key` at the grid point (alpha, beta) (exact coordinates of the grid)."""
        i = int(np.argmin(np.abs(self.x - alpha)))
        if not np.isclose(self.x[i], alpha):
            raise KeyError(f"α={alpha} is not a grid coordinate")
        if not self.two_d:
            return float(self.values[key][i])
        j = int(np.argmin(np.abs(self.y - (beta or 0.0))))
        if not np.isclose(self.y[j], beta or 0.0):
            raise KeyError(f"β={beta} is not a grid coordinate")
        return float(self.values[key][j, i])

    @property
    def splits(self) -> list[str]:
        return [s for s in ("train", "dev") if f"{s}_loss" in self.values]


def li_aliases(surface: Surface) -> dict[str, np.ndarray]:
    """Li et al.'s key names for our values: test_loss, and train_acc/test_acc in percent."""
    out = {}
    if "dev_loss" in surface.values:
        out["test_loss"] = surface.values["dev_loss"]
    for split, li in (("train", "train"), ("dev", "test")):
        if f"{split}_accuracy" in surface.values:
            out[f"{li}_acc"] = 100.0 * np.asarray(surface.values[f"{split}_accuracy"], dtype=np.float64)
        if f"{split}_error" in surface.values:
            out[f"{li}_err"] = 100.0 * np.asarray(surface.values[f"{split}_error"], dtype=np.float64)
    return out


def _widen(coords: np.ndarray, axis: str, side: str) -> str:
    """The override that moves one edge of `axis` out by half the span at the same spacing."""
    c = np.asarray(coords, dtype=np.float64)
    span = float(c.max() - c.min())
    step = span / max(len(c) - 1, 1)
    extra = max(1, int(round(0.5 * span / step))) if step > 0 else 1
    new = float(c.max() + extra * step) if side == "max" else float(c.min() - extra * step)
    return f"grid.{axis}.{side}={new:g} grid.{axis}.num={len(c) + extra}"


def minimum_on_edge(surface: Surface, key: str = "train_loss") -> dict | None:
    """Where the lowest finite `key` lies on the grid's edge: {"key", "alpha", "beta", "value",
    "edges" (e.g. ["x.max"]), "override" (the Hydra overrides that widen the grid there),
    "message"}; None when it is inside (or `key` is absent or has no finite value)."""
    if key not in surface.values:
        return None
    z = np.asarray(surface.values[key], dtype=np.float64)
    if not np.isfinite(z).any():
        return None
    flat = int(np.nanargmin(np.where(np.isfinite(z), z, np.nan)))
    edges, overrides = [], []
    if surface.two_d:
        j, i = np.unravel_index(flat, z.shape)
        beta = float(surface.y[j])
        checks = [("x", i, len(surface.x), surface.x), ("y", j, len(surface.y), surface.y)]
    else:
        i, beta = flat, None
        checks = [("x", i, len(surface.x), surface.x)]
    for axis, idx, n, coords in checks:
        if n < 2:
            continue
        for side, at in (("min", 0), ("max", n - 1)):
            if idx == at:
                edges.append(f"{axis}.{side}")
                overrides.append(_widen(coords, axis, side))
    if not edges:
        return None
    alpha = float(surface.x[i])
    where = f"α={alpha:g}" + ("" if beta is None else f", β={beta:g}")
    override = " ".join(overrides)
    return {
        "key": key,
        "alpha": alpha,
        "beta": beta,
        "value": float(z.flat[flat]),
        "edges": edges,
        "override": override,
        "message": (
            f"{key.replace('train_', 'training ').replace('_', ' ')}: the lowest point ({where}) "
            f"lies on the grid's edge ({', '.join(edges)}): "
            f"the basin may extend past it; widen with {override}"
        ),
    }


def write_vts(surface: Surface, path: str | os.PathLike, height: str = "train_loss") -> Path:
    """The 2D surface as a VTK structured grid (XML ``.vts``) for ParaView: points (α, β, `height`),
    dimensions (nx, ny, 1), one point array per value (non-finite values stored as NaN), written
    atomically. Needs pyvista (optional dependency)."""
    try:
        import pyvista  # optional: the VTK wheel is large and only this export needs it
    except ImportError as err:
        raise ImportError("write_vts needs pyvista: pip install pyvista") from err
    if not surface.two_d:
        raise ValueError("write_vts exports 2D surfaces; this one is 1D")
    if height not in surface.values:
        raise KeyError(f"write_vts: no value {height!r} (has {', '.join(sorted(surface.values))})")
    xx, yy = np.meshgrid(np.asarray(surface.x, np.float64), np.asarray(surface.y, np.float64))  # [ny, nx]
    zz = np.asarray(surface.values[height], dtype=np.float64)
    zz = np.where(np.isfinite(zz), zz, np.nan)
    # VTK orders points x fastest: the Fortran ravel of [nx, ny] arrays, i.e. the C ravel of [ny, nx]
    grid = pyvista.StructuredGrid(xx.T, yy.T, zz.T)
    for key, arr in {**surface.values, **li_aliases(surface)}.items():
        a = np.asarray(arr, dtype=np.float64)
        grid.point_data[key] = np.where(np.isfinite(a), a, np.nan).ravel(order="C")
    path = Path(path)
    with atomic_path(path) as tmp:
        real = Path(str(tmp))
        target = real if real.suffix == ".vts" else real.with_suffix(".vts")
        grid.save(str(target))
        if target != real:
            os.replace(target, real)
    return path


def write_surface(path: str | os.PathLike, surface: Surface) -> Path:
    """Write atomically (temporary file, fsync, rename). 2D arrays must be [ny, nx]."""
    path = Path(path)
    for key, arr in surface.values.items():
        if np.shape(arr) != surface.shape:
            raise ValueError(
                f"surface value {key!r} has shape {np.shape(arr)}, expected {surface.shape} ([ny, nx] for 2D)"
            )
    aliases = li_aliases(surface)
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["layout"] = LAYOUT
            f.attrs["dimensions"] = 2 if surface.two_d else 1
            for key in ("task", "primary_metric", "key"):
                if key in surface.meta:
                    f.attrs[key] = str(surface.meta[key])
            meta = dict(surface.meta) | {"li_aliases": sorted(aliases)}
            for key in JSON_ATTRS:
                if key in meta:
                    f.attrs[key] = json.dumps(meta[key], default=str)
            f.create_dataset("xcoordinates", data=np.asarray(surface.x, dtype=np.float64))
            if surface.y is not None:
                f.create_dataset("ycoordinates", data=np.asarray(surface.y, dtype=np.float64))
            for key, arr in {**surface.values, **aliases}.items():
                f.create_dataset(key, data=np.asarray(arr, dtype=np.float64))
            if surface.per_example:
                group = f.create_group("per_example")
                for key, arr in surface.per_example.items():
                    if np.shape(arr)[:-1] != surface.shape:
                        raise ValueError(
                            f"per-example {key!r} has shape {np.shape(arr)}, expected {surface.shape} + (n,)"
                        )
                    group.create_dataset(key, data=np.asarray(arr, dtype=np.float32))
    return path


def _from_li(values: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """A Li et al. file's keys in ours: test_* → dev_*, *_acc (percent) → *_accuracy, *_error."""
    out = {}
    for key, arr in values.items():
        split, _, name = key.partition("_")
        split = {"test": "dev"}.get(split, split)
        if name == "acc":
            out[f"{split}_accuracy"] = arr / 100.0
            out[f"{split}_error"] = 1.0 - arr / 100.0
        else:
            out[f"{split}_{name}" if name else key] = arr
    return out


def load_surface(path: str | os.PathLike) -> Surface:
    """Read a surface file: ours (either layout) or a Li et al. loss-landscape file."""
    path = Path(path)
    # every refusal below is a LandscapeError (bad input) naming the file; nothing outside it is read
    f = open_self_contained(path, "surface file")
    with f:
        if "xcoordinates" not in f:
            raise LandscapeError(
                f"surface file {path} has no 'xcoordinates' dataset (not a landscape surface)"
            )
        try:  # h5py says KeyError or OSError for a damaged object header
            x = np.asarray(f["xcoordinates"][...])
            y = np.asarray(f["ycoordinates"][...]) if "ycoordinates" in f else None
            meta: dict = {}
            for key, value in f.attrs.items():
                value = value.decode() if isinstance(value, bytes) else value
                meta[key] = json.loads(value) if key in JSON_ATTRS else value
            skip = {"xcoordinates", "ycoordinates", *meta.get("li_aliases", [])}
            values = {
                k: np.asarray(f[k][...]) for k in f.keys() if k not in skip and isinstance(f[k], h5py.Dataset)
            }
            group = f.get("per_example")
            per_example = (
                {k: np.asarray(group[k][...]) for k in group.keys()} if isinstance(group, h5py.Group) else {}
            )
        except (OSError, KeyError, ValueError, RecursionError, UnicodeDecodeError) as err:
            # corrupt bytes inside the file, a garbage or absurdly nested JSON attribute
            text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise LandscapeError(f"surface file {path} is corrupt ({text[:200]})") from None
    ours = str(meta.get("format", "")).startswith("bertviz-surface/")
    if not ours:
        values = _from_li(values)
        meta.setdefault("source", "li-et-al")
    if y is not None:
        layout = meta.get("layout", "xy" if ours else "yx")  # /1 files stored [i, j]; Li's rows are y
        for key, arr in values.items():
            if arr.ndim == 2 and layout == "xy":
                values[key] = arr.T
            elif arr.shape == (len(x), len(y)) and len(x) != len(y):
                values[key] = arr.T  # Li's non-square grids come out [nx, ny]
        meta["layout"] = LAYOUT
    for key in ("train_loss", "dev_loss", "test_loss"):  # a cross-entropy or an MSE is never negative
        arr = values.get(key)
        if arr is not None and np.issubdtype(np.asarray(arr).dtype, np.number):
            finite = np.asarray(arr, dtype=np.float64)[np.isfinite(arr)]
            if finite.size and finite.min() < 0:
                raise LandscapeError(
                    f"surface file {path}: {key} has negative values (min {finite.min():.4g}); "
                    "a cross-entropy or mean squared error cannot be negative"
                )
    return Surface(x, y, values, meta, per_example)
