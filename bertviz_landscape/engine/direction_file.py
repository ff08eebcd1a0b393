"""The direction file: a surface's δ1 (and δ2), computed once and loaded by every shard.

Li et al.'s loss-landscape code computes its directions once into a "direction file" that
every MPI worker reads; so do we. HDF5 (format ``bertviz-directions/1``):

Groups ``xdirection`` and (2D) ``ydirection``
    one float32 dataset per moved parameter, named by its Hugging Face parameter name
    (parameters outside the selection, or biases/LayerNorm when excluded, are absent: zero).
Datasets (``recipe=pca`` only, Li et al.'s names, what their ``plot_2D.plot_contour_trajectory``
reads for its axis labels): ``explained_variance_ratio_``, ``explained_variance_``,
``singular_values_`` [k] of the trajectory PCA the directions came from.
Attributes
    ``format``; ``recipe``; ``center`` (theta0|theta1|theta2); ``key`` (fingerprint of the
    recipe request and the checkpoints' hashes); JSON strings ``info`` (the recipe's own
    numbers, e.g. PCA's explained variance), ``summary`` (norms, cosine, per-layer norms) and
    ``checkpoints`` (role → sha256 of the checkpoints it was made from).

It lives in the surface's parts directory while shards run and is placed beside the finished
surface as ``<surface stem>.directions.h5``; ``directions.file=<path>`` reuses it for another
surface (the same random directions at another precision, on another data subset, ...).
"""

from __future__ import annotations

import json
import math
import os
from collections import OrderedDict
from pathlib import Path

import h5py
import numpy as np
import torch

from bertviz_landscape.algebra import cosine, norm
from bertviz_landscape.contracts.atomic import atomic_path
from bertviz_landscape.contracts.errors import LandscapeError
from bertviz_landscape.contracts.h5file import open_self_contained
from bertviz_landscape.engine.directions import Directions

FORMAT = "bertviz-directions/1"
LI_PCA_KEYS = {  # Li et al.'s dataset name → our `info` key (recipe=pca)
    "explained_variance_ratio_": "explained_variance_ratio",
    "explained_variance_": "explained_variance",
    "singular_values_": "singular_values",
}


def beside(surface: str | os.PathLike) -> Path:
    """Where a finished surface keeps its directions: `<stem>.directions.h5` next to it."""
    surface = Path(surface)
    return surface.with_name(f"{surface.stem}.directions.h5")


def write_directions(
    path: str | os.PathLike, directions: Directions, key: str, checkpoints: dict[str, str]
) -> Path:
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["recipe"] = directions.recipe
            f.attrs["center"] = directions.center
            f.attrs["key"] = key
            f.attrs["info"] = json.dumps(directions.info, default=str)
            f.attrs["summary"] = json.dumps(directions.summary(), default=str)
            f.attrs["checkpoints"] = json.dumps(checkpoints)
            for li, ours in LI_PCA_KEYS.items():
                if directions.recipe == "pca" and (directions.info or {}).get(ours) is not None:
                    f[li] = np.asarray(directions.info[ours], dtype=np.float64)
            for group, tensors in (("xdirection", directions.x), ("ydirection", directions.y)):
                if tensors is None:
                    continue
                g = f.create_group(group)
                for name, t in tensors.items():
                    g.create_dataset(name, data=t.detach().cpu().float().numpy())
    return Path(path)


def read_directions(path: str | os.PathLike) -> tuple[Directions, dict]:
    """(Directions, attributes) from a direction file; a LandscapeError naming the file if it is
    not one."""
    path = Path(path)
    f = open_self_contained(path, "direction file")  # nothing outside the file is ever read
    try:
        with f:
            if f.attrs.get("format") != FORMAT:
                raise LandscapeError(
                    f"{path} is not a direction file (format {f.attrs.get('format')!r}, expected {FORMAT})"
                )
            attrs = {
                k: (json.loads(v) if k in ("info", "summary", "checkpoints") else v)
                for k, v in f.attrs.items()
            }
            x = OrderedDict((n, torch.from_numpy(np.asarray(d[...]))) for n, d in f["xdirection"].items())
            y = (
                OrderedDict((n, torch.from_numpy(np.asarray(d[...]))) for n, d in f["ydirection"].items())
                if "ydirection" in f
                else None
            )
    except LandscapeError:
        raise
    except (OSError, KeyError, ValueError, RecursionError) as err:  # corrupt bytes, a garbage JSON attribute
        text = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
        raise LandscapeError(f"direction file {path} cannot be read ({text[:200]})") from None
    for axis, tensors in (("xdirection", x), ("ydirection", y or {})):
        for name, t in tensors.items():  # what a direction claims to be: a float tensor of δ1's parameters
            if not t.dtype.is_floating_point:
                raise LandscapeError(f"direction file {path}: {axis}/{name} has dtype {t.dtype}, not a float")
            if axis == "ydirection" and (name not in x or x[name].shape != t.shape):
                raise LandscapeError(
                    f"direction file {path}: {axis}/{name} has shape {list(t.shape)}, xdirection "
                    f"{list(x[name].shape) if name in x else 'has no such parameter'}"
                )
    if y is not None and list(y) != list(x):
        raise LandscapeError(f"direction file {path}: ydirection and xdirection name other parameters")
    return Directions(str(attrs["recipe"]), x, y, str(attrs["center"]), dict(attrs["info"])), attrs


def check_matches_surface(directions: Directions, attrs: dict, path: Path, surface, surface_path) -> None:
    """A direction file read for a finished surface must be that surface's: the same dimensions,
    recipe and centre, the recipe's settings (a random recipe's seed and normalisation), the norms
    and cosine the surface recorded (recomputed from the file's tensors, not its attributes) and
    the checkpoints' hashes; a LandscapeError naming both."""
    meta = surface.meta.get("directions") or {}
    problems = []
    if surface.two_d != (directions.y is not None):
        problems.append(
            f"a {'2D' if directions.y is not None else '1D'} direction file for a "
            f"{'2D' if surface.two_d else '1D'} surface"
        )
    for key, have in (("recipe", directions.recipe), ("center", directions.center)):
        if meta.get(key) not in (None, have):
            problems.append(f"{key} {have!r} vs {meta.get(key)!r}")
    for key, have in sorted((directions.info or {}).items()):  # the recipe's settings: seed, normalisation
        want = meta.get(key)
        scalars = (str, int, float, bool)
        if not (isinstance(have, scalars) and isinstance(want, scalars)):
            continue
        same = (
            math.isclose(float(have), float(want), rel_tol=1e-9)
            if isinstance(have, (int, float)) and isinstance(want, (int, float))
            else have == want
        )
        if not same:  # filter-normalised random axes of another seed have the very same norms
            problems.append(f"{key} {have!r} vs the surface's {want!r}")
    measured = {"norm_x": norm(directions.x)}
    if directions.y is not None:
        measured |= {"norm_y": norm(directions.y), "cosine_xy": cosine(directions.x, directions.y)}
    for key, have in measured.items():
        want = meta.get(key)
        if isinstance(want, (int, float)) and not math.isclose(have, want, rel_tol=1e-4, abs_tol=1e-9):
            problems.append(f"{key} {have:.6g} vs the surface's {want:.6g}")
    recorded = surface.meta.get("checkpoints") or {}
    for role, sha in (attrs.get("checkpoints") or {}).items():
        entry = recorded.get(role)
        want = entry.get("sha256") if isinstance(entry, dict) else None
        if sha and want and sha != want:
            problems.append(f"checkpoint {role} {str(sha)[:12]} vs the surface's {str(want)[:12]}")
    if problems:
        raise LandscapeError(
            f"direction file {path} is not the one surface {surface_path} was computed with "
            f"({'; '.join(problems[:3])})"
        )


def check_against(
    directions: Directions, attrs: dict, path: Path, state: dict, two_d: bool, center_sha: str | None
) -> None:
    """A reused direction file must fit this landscape: parameters, shapes, dimensions, centre."""
    if two_d and directions.y is None:
        raise LandscapeError(f"direction file {path} has one direction; a 2D grid needs two")
    for name, t in [*directions.x.items(), *(directions.y or {}).items()]:
        if name not in state or tuple(state[name].shape) != tuple(t.shape):
            raise LandscapeError(
                f"direction file {path}: parameter {name!r} is not in this model or has another shape"
            )
    recorded = (attrs.get("checkpoints") or {}).get(directions.center)
    if center_sha and recorded and recorded != center_sha:
        raise LandscapeError(
            f"direction file {path} is centred on a different {directions.center} (checkpoint hash differs)"
        )
