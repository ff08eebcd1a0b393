"""The surface file: one HDF5 file per landscape, self-describing, in Li et al.'s key names.

Datasets
    ``xcoordinates`` [nx], ``ycoordinates`` [ny] (2D only);
    ``{train,dev}_loss``, ``{train,dev}_<metric>`` (e.g. ``dev_accuracy``, ``dev_f1``),
    ``{train,dev}_error`` (1 − primary metric), each [nx] or [nx, ny], indexed
    [i, j] ↔ (x[i], y[j]). Non-finite values are stored as they came (NaN/inf).
Attributes
    ``format`` ("bertviz-surface/1"), ``task``, ``primary_metric``, ``dimensions`` (1|2) and
    JSON strings ``directions`` (recipe, centre, norms, cosine, per-layer norms, explained
    variance), ``checkpoints`` (role → path, sha256), ``data`` (splits, subset sizes, seed),
    ``grid``, ``evaluation`` (precision, cache).
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import numpy as np

FORMAT = "bertviz-surface/1"
JSON_ATTRS = ("directions", "checkpoints", "data", "grid", "evaluation")


@dataclass
class Surface:
    x: np.ndarray
    y: np.ndarray | None
    values: dict[str, np.ndarray]  # key (e.g. "dev_loss") → array [nx] or [nx, ny]
    meta: dict = field(default_factory=dict)  # task, primary_metric, and the JSON_ATTRS

    @property
    def two_d(self) -> bool:
        return self.y is not None

    def __getitem__(self, key: str) -> np.ndarray:
        return self.values[key]

    def keys(self) -> list[str]:
        return list(self.values)


def write_surface(path: str | os.PathLike, surface: Surface) -> Path:
    """Write atomically: a temporary file in the same directory, then rename over `path`."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with h5py.File(tmp, "w") as f:
            f.attrs["format"] = FORMAT
            f.attrs["dimensions"] = 2 if surface.two_d else 1
            for key in ("task", "primary_metric"):
                if key in surface.meta:
                    f.attrs[key] = str(surface.meta[key])
            for key in JSON_ATTRS:
                if key in surface.meta:
                    f.attrs[key] = json.dumps(surface.meta[key], default=str)
            f.create_dataset("xcoordinates", data=np.asarray(surface.x, dtype=np.float64))
            if surface.y is not None:
                f.create_dataset("ycoordinates", data=np.asarray(surface.y, dtype=np.float64))
            for key, arr in surface.values.items():
                f.create_dataset(key, data=np.asarray(arr, dtype=np.float64))
        os.replace(tmp, path)
    finally:
        if tmp.exists():
            tmp.unlink()
    return path


def load_surface(path: str | os.PathLike) -> Surface:
    """Read a surface file (ours, or a Li et al. loss-landscape file with the same keys)."""
    with h5py.File(path, "r") as f:
        x = np.asarray(f["xcoordinates"][...])
        y = np.asarray(f["ycoordinates"][...]) if "ycoordinates" in f else None
        values = {k: np.asarray(f[k][...]) for k in f.keys() if k not in ("xcoordinates", "ycoordinates")}
        meta: dict = {}
        for key, value in f.attrs.items():
            value = value.decode() if isinstance(value, bytes) else value
            meta[key] = json.loads(value) if key in JSON_ATTRS else value
    return Surface(x, y, values, meta)
