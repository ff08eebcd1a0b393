"""What the figures read: surfaces, analysis JSONs and run directories, and who they belong to.

`surface_identity(surface, path)` says which (task, init) a surface was computed around: from
the run that holds its θ1 checkpoint (`run.json`), else from the file name
(`<task>_<init>_seed<N>_...`), else "unknown" (e.g. a Li et al. file); `surface_seed` its run's
seed the same way (None when neither says). `read_analysis(path)`
reads a `bertviz-analysis/1` JSON (see /ANALYSIS_SCHEMA: "analysis", "runs", "per_run",
"summary").
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass
from pathlib import Path

from bertviz_landscape.contracts.names import check_name, is_name
from bertviz_landscape.contracts.rundir import RunDir
from bertviz_landscape.engine.surface import Surface, load_surface

ANALYSIS_FORMAT = "bertviz-analysis/1"
INITS = ("pretrained", "scratch")


@dataclass
class SurfaceFile:
    path: Path
    surface: Surface
    task: str
    init: str
    seed: int | None = None

    @property
    def recipe(self) -> str:
        return str((self.surface.meta.get("directions") or {}).get("recipe") or "difference")

    @property
    def label(self) -> str:
        return f"{self.task} · {self.init} · {self.recipe}"


def surface_identity(surface: Surface, path: str | os.PathLike) -> tuple[str, str]:
    task = str(surface.meta.get("task") or "")
    init = ""
    ckpts = surface.meta.get("checkpoints") or {}
    for role in ("theta1", "theta0"):
        entry = ckpts.get(role)
        p = entry.get("path") if isinstance(entry, dict) else entry
        if p:
            rd = RunDir.of_checkpoint(p)
            if rd is not None:
                ident = rd.read_identity()
                task = task or str(ident.get("task", ""))
                init = str(ident.get("init", ""))
                if init:
                    break
    name = Path(path).name
    if not init:
        m = re.search(r"(?:^|_)(pretrained|scratch)(?:_|$)", Path(path).stem)
        init = m.group(1) if m else "unknown"
    if not task:
        task = name.split("_")[0] if "_" in name else "unknown"
        task = task if is_name(task) else "unknown"
    # names from the file's attributes or a run.json become parts of figure file names
    return check_name(task, "task", path), check_name(init, "init", path)


def surface_seed(surface: Surface, path: str | os.PathLike) -> int | None:
    """The seed of the run whose θ1 the surface was computed around: its run.json, else the file
    name's ``seed<N>``; None when neither says."""
    entry = (surface.meta.get("checkpoints") or {}).get("theta1")
    p = entry.get("path") if isinstance(entry, dict) else entry
    rd = RunDir.of_checkpoint(p) if p else None
    seed = rd.read_identity().get("seed") if rd is not None else None
    if seed is None:
        m = re.search(r"(?:^|_)seed(\d+)(?:_|$)", Path(path).stem)
        seed = m.group(1) if m else None
    try:
        return None if seed is None else int(seed)
    except (TypeError, ValueError):
        return None


def read_surface(path: str | os.PathLike) -> SurfaceFile:
    surface = load_surface(path)
    task, init = surface_identity(surface, path)
    sf = SurfaceFile(Path(path), surface, task, init, surface_seed(surface, path))
    check_name(sf.recipe, "directions.recipe", path)  # recipe and grid name are parts of figure names
    grid = (
        (surface.meta.get("grid") or {}).get("name") if isinstance(surface.meta.get("grid"), dict) else None
    )
    if grid is not None:
        check_name(str(grid), "grid.name", path)
    return sf


def read_analysis(path: str | os.PathLike) -> dict:
    """An analysis JSON, checked for the contract's top-level keys (KeyError naming the file)."""
    path = Path(path)
    data = json.loads(path.read_text())
    if data.get("format") != ANALYSIS_FORMAT or "analysis" not in data:
        raise KeyError(f"{path}: not a {ANALYSIS_FORMAT} file (keys 'format', 'analysis')")
    data.setdefault("runs", [])
    data.setdefault("per_run", [])
    data.setdefault("summary", {})
    for i, run in enumerate(data["runs"] if isinstance(data["runs"], list) else []):
        for key in ("task", "init"):
            if isinstance(run, dict) and run.get(key) is not None:
                check_name(run[key], f"runs[{i}].{key}", path)
    data["_path"] = str(path)
    return data


def analysis_identity(data: dict) -> tuple[str, str]:
    """(task, init) of an analysis JSON: its first run, else the surface it read (by its run or file name)."""
    runs = data.get("runs") or [{}]
    task, init = runs[0].get("task"), runs[0].get("init")
    if not (task and init):
        inputs = data.get("inputs") or {}
        for entry in [inputs.get("surface"), *(inputs.get("surfaces") or [])]:
            path = entry.get("path") if isinstance(entry, dict) else entry
            if not path:
                continue
            try:
                t, i = surface_identity(load_surface(path), path)
            except (OSError, KeyError, ValueError):
                m = re.search(r"(?:^|_)(pretrained|scratch)(?:_|$)", Path(path).stem)
                t, i = Path(path).name.split("_")[0], (m.group(1) if m else None)
            task, init = task or t, init or i
            break
    return str(task or "unknown"), str(init or "unknown")


def is_analysis_file(path: Path) -> bool:
    if path.suffix != ".json" or path.name.startswith("."):
        return False
    try:
        with open(path) as f:
            head = f.read(4096)
    except OSError:
        return False
    return ANALYSIS_FORMAT in head
